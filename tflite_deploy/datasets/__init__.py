"""Datasets: one interface that feeds calibration, training (QAT) and evaluation.

A :class:`Dataset` is an indexable collection of preprocessed samples (NumPy arrays without the
batch dimension) with optional integer labels. It comes from a bundled set (``digits``), an image
folder (class sub-folders), or a ``.npz``/``.npy`` file; see :func:`open_dataset`.
"""

from tflite_deploy.datasets.base import ArrayDataset, Dataset, Preprocess
from tflite_deploy.datasets.open import open_dataset
from tflite_deploy.datasets.splits import eval_split

__all__ = ["ArrayDataset", "Dataset", "Preprocess", "eval_split", "open_dataset"]
