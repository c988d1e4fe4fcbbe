"""Write a small image-folder dataset of real handwritten digits (scikit-learn's) as PNG files.

    python tools/make_digits_folder.py datasets/digits-png --per-class 10

The folder is committed under datasets/ so that image-folder loading is tested on real images.
"""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("--per-class", type=int, default=10)
    args = ap.parse_args()
    d = load_digits()
    for label in range(10):
        folder = args.out / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        for k, i in enumerate(np.flatnonzero(d.target == label)[: args.per_class]):
            pixels = (d.images[i] * (255.0 / 16.0)).round().astype(np.uint8)  # 0..16 grey levels -> 0..255
            Image.fromarray(pixels, mode="L").save(folder / f"{label}_{k:03d}_sk{i}.png")


if __name__ == "__main__":
    main()
