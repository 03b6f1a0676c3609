"""Handwritten digits for the paper's Table 1: scikit-learn's bundled 8×8 digits, or MNIST IDX files.

Both come as float32 images in [0, 1] of shape (N, 1, side, side) and int64 labels 0–9, split into
train and test. The bundled digits need no download; MNIST is read from a directory the user names
(``--mnist-dir`` or the ``ODEVIZ_MNIST_DIR`` environment variable). A missing, truncated or
malformed file is refused with a :class:`MnistError` that names the file and what is wrong with it.
"""
from __future__ import annotations

import gzip
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MNIST_DIR_VARIABLE = "ODEVIZ_MNIST_DIR"
DIGITS_TEST_FRACTION = 0.2

# The IDX format (LeCun's MNIST page): two zero bytes, a type code, the number of dimensions, then
# each dimension as a big-endian int32, then the data in row-major order.
IDX_UNSIGNED_BYTE = 0x08
IMAGE_DIMENSIONS, LABEL_DIMENSIONS = 3, 1
# The four MNIST files, by role; each is found under either spelling, raw or gzipped.
MNIST_FILES = {
    "train images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


class MnistError(ValueError):
    """An MNIST directory or IDX file that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class DigitData:
    """Train and test images (N, 1, side, side) in [0, 1] and their labels 0–9."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray

    @property
    def side(self) -> int:
        return int(self.train_images.shape[-1])

    @property
    def pixels(self) -> int:
        return self.side * self.side


def bundled_digits(seed: int = 0, test_fraction: float = DIGITS_TEST_FRACTION) -> DigitData:
    """scikit-learn's 1,797 bundled 8×8 digits, shuffled with ``seed`` and split train/test."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]  # grey levels 0–16
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    test = order[: round(test_fraction * len(labels))]
    train = order[len(test):]
    return DigitData("8×8 digits", images[train], labels[train], images[test], labels[test])


# ---- MNIST IDX files ----------------------------------------------------------------------------
def read_idx(path: str | os.PathLike, dimensions: int) -> np.ndarray:
    """The array in an IDX file of unsigned bytes (gzipped when the name ends in .gz).

    Raises :class:`MnistError` when the file is not IDX, has another type or number of dimensions
    than expected, or holds fewer or more bytes than its header announces.
    """
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise MnistError(f"cannot read {path}: {error}") from None
    header = 4 + 4 * dimensions
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise MnistError(f"{path.name} is not an IDX file (it does not start with two zero bytes)")
    kind, found = raw[2], raw[3]
    if kind != IDX_UNSIGNED_BYTE or found != dimensions:
        what = {IMAGE_DIMENSIONS: "images", LABEL_DIMENSIONS: "labels"}.get(dimensions, f"{dimensions}-D data")
        raise MnistError(
            f"{path.name} holds {found}-D data of type 0x{kind:02x}, expected {what}: "
            f"{dimensions}-D unsigned bytes (type 0x08)"
        )
    if len(raw) < header:
        raise MnistError(f"{path.name} is truncated: its header is incomplete")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dimensions))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        problem = "truncated" if len(raw) < expected else "longer than its header says"
        raise MnistError(
            f"{path.name} is {problem}: its header announces shape {shape} ({expected:,} bytes), "
            f"the file holds {len(raw):,} bytes"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write unsigned bytes as an IDX file (gzipped when the name ends in .gz)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, IDX_UNSIGNED_BYTE, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    data = header + array.tobytes()
    Path(path).write_bytes(gzip.compress(data) if str(path).endswith(".gz") else data)


def _find(directory: Path, role: str) -> Path:
    for stem in MNIST_FILES[role]:
        for name in (stem, stem + ".gz"):
            if (directory / name).is_file():
                return directory / name
    raise MnistError(f"no MNIST {role} in {directory}: expected {MNIST_FILES[role][0]} (or .gz)")


def _images_and_labels(directory: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(_find(directory, f"{split} images"), IMAGE_DIMENSIONS)
    labels = read_idx(_find(directory, f"{split} labels"), LABEL_DIMENSIONS)
    if len(images) != len(labels):
        raise MnistError(f"the MNIST {split} set in {directory} has {len(images):,} images but {len(labels):,} labels")
    if images.shape[1] != images.shape[2]:
        raise MnistError(f"the MNIST {split} images in {directory} are {images.shape[1]}×{images.shape[2]}, not square")
    if labels.size and labels.max() > 9:
        raise MnistError(f"the MNIST {split} labels in {directory} include {labels.max()}; digits are 0–9")
    return (images.astype(np.float32) / 255.0)[:, None], labels.astype(np.int64)


_cache_lock = threading.Lock()
_cache: tuple[tuple, DigitData] | None = None  # the last directory read: the page checks, then trains


def load_mnist(directory: str | os.PathLike) -> DigitData:
    """MNIST's train and test sets from IDX files in ``directory`` (raw or gzipped).

    The last directory read is cached (until its files change), so checking a directory and then
    training on it reads it once.
    """
    global _cache
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise MnistError(f"the MNIST directory {directory} does not exist")
    files = [_find(directory, role) for role in MNIST_FILES]
    key = tuple((str(f.resolve()), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    with _cache_lock:
        if _cache is not None and _cache[0] == key:
            return _cache[1]
        train_images, train_labels = _images_and_labels(directory, "train")
        test_images, test_labels = _images_and_labels(directory, "test")
        if train_images.shape[1:] != test_images.shape[1:]:
            raise MnistError(f"the MNIST train and test images in {directory} differ in size")
        data = DigitData("MNIST", train_images, train_labels, test_images, test_labels)
        _cache = (key, data)
        return data


def mnist_dir_from_environment() -> str | None:
    """The directory named by ``ODEVIZ_MNIST_DIR``, or None when it is unset or empty."""
    return os.environ.get(MNIST_DIR_VARIABLE) or None


def load_digit_data(mnist_dir: str | None, seed: int = 0) -> DigitData:
    """MNIST from ``mnist_dir`` when one is given, else the bundled 8×8 digits."""
    return load_mnist(mnist_dir) if mnist_dir else bundled_digits(seed)
