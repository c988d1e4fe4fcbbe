"""Image folders: ``root/<class>/*.png`` (labelled) or ``root/*.jpg`` (unlabelled), read with Pillow."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tflite_deploy.datasets.base import Dataset, Preprocess
from tflite_deploy.errors import DatasetError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


class ImageFolderDataset(Dataset):
    """Images read lazily, one at a time, so a large folder costs no memory up front."""

    def __init__(self, root: Path, preprocess: Preprocess) -> None:
        self.root, self.preprocess, self.name = Path(root), preprocess, str(root)
        classes = sorted(d.name for d in self.root.iterdir() if d.is_dir() and not d.name.startswith("."))
        if classes:
            self.paths, labels = [], []
            for i, c in enumerate(classes):
                files = _images_in(self.root / c)
                self.paths += files
                labels += [i] * len(files)
            self.labels = np.asarray(labels, dtype=np.int64)
            self.class_names = classes
        else:
            self.paths = _images_in(self.root)
        if not self.paths:
            empty = not any(True for _ in self.root.iterdir())
            raise DatasetError(f"Dataset {root} {'is empty' if empty else 'holds no images'}: no images found "
                               f"(looked for {', '.join(sorted(IMAGE_SUFFIXES))}, in class sub-folders or directly).")

    def __len__(self) -> int:
        return len(self.paths)

    def fingerprint(self) -> str:
        """The files (path, size, modification time), their labels and the preprocessing: no image decoded."""
        import hashlib

        h = hashlib.sha256(repr(self.preprocess).encode())
        for p in self.paths:
            st = p.stat()
            h.update(f"{p.relative_to(self.root)}|{st.st_size}|{st.st_mtime_ns};".encode())
        if self.labels is not None:
            h.update(self.labels.tobytes())
        return h.hexdigest()

    def sample(self, i: int) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        path = self.paths[i]
        try:
            with Image.open(path) as im:
                im = im.convert("L" if self.preprocess.color == "grayscale" else "RGB")
                if self.preprocess.size:
                    im = im.resize(self.preprocess.size[::-1], Image.BILINEAR)
                a = np.asarray(im)
        except (OSError, UnidentifiedImageError) as e:
            raise DatasetError(f"Image {path} could not be read: {e}") from None
        return self.preprocess.normalize(a[..., None] if a.ndim == 2 else a)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
