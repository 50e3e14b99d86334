"""Image readers: IDX files (gzipped or raw; MNIST, Fashion-MNIST), ``.npz`` arrays and folders of images.

:func:`read_images` is the public entry point. Every reader returns an :class:`ImageSet`: one ``uint8``
array ``N×H×W`` of grayscale images held in memory, plus optional integer labels. Nothing is ever
downloaded; a missing data set is an error that says what is missing and how to get it, and a damaged file
is an error naming the file.
"""

from __future__ import annotations

import gzip
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from latentatlas.errors import LatentAtlasError, printable

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_LABELS = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
_SPLIT_PREFIX = {"train": "train", "test": "t10k"}

# IDX type byte → big-endian numpy dtype (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT").
_IDX_DTYPES = {
    0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


@dataclass(frozen=True)
class ImageSet:
    """Grayscale images in memory.

    ``images`` is ``uint8`` ``N×H×W``; ``labels`` an ``int64`` array of length N or None; ``label_names``
    the name of each label value (index = label) or None; ``source`` says where the images came from.
    """

    images: np.ndarray
    labels: np.ndarray | None = None
    label_names: list[str] | None = None
    source: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        images = np.asarray(self.images)
        if images.dtype != np.uint8 or images.ndim != 3:
            raise LatentAtlasError(
                f"{self.source or 'images'}: expected uint8 images of shape N×H×W, got {images.dtype} {images.shape}")
        if self.labels is not None:
            labels = np.asarray(self.labels)
            if labels.shape != (images.shape[0],):
                raise LatentAtlasError(
                    f"{self.source or 'labels'}: {labels.shape[0] if labels.ndim else 0} labels for "
                    f"{images.shape[0]} images")
            object.__setattr__(self, "labels", labels.astype(np.int64, copy=False))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        """Height and width of every image."""
        return int(self.images.shape[1]), int(self.images.shape[2])

    def take(self, index) -> "ImageSet":
        """A new set with the images (and labels) at ``index`` (a slice, integer array or boolean mask)."""
        return ImageSet(
            images=np.ascontiguousarray(self.images[index]),
            labels=None if self.labels is None else self.labels[index],
            label_names=self.label_names, source=self.source, meta=dict(self.meta))

    def head(self, n: int | None) -> "ImageSet":
        """The first ``n`` images (all of them when ``n`` is None or larger than the set)."""
        if n is None or n >= len(self):
            return self
        return self.take(slice(0, n))


def _open_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise LatentAtlasError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise LatentAtlasError(f"{path}: is a folder, expected a file") from None
    except OSError as exc:
        raise LatentAtlasError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise LatentAtlasError(f"{path}: corrupt gzip data ({exc})") from None
    return raw


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzipped or raw, detected from its content) into a native-endian numpy array.

    The header is validated: two zero bytes, a known type code, at least one dimension, and a payload of
    exactly the size the dimensions promise. Any mismatch raises :class:`LatentAtlasError` naming the file.
    """
    path = Path(path)
    data = _open_bytes(path)
    if len(data) < 4:
        raise LatentAtlasError(f"{path}: not an IDX file (only {len(data)} bytes)")
    if data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise LatentAtlasError(
            f"{path}: not an IDX file (bad magic number 0x{data[:4].hex()}; expected 0x0000TTDD with a known "
            f"type TT in {', '.join(f'{k:02x}' for k in _IDX_DTYPES)})")
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    if ndim == 0:
        raise LatentAtlasError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise LatentAtlasError(f"{path}: truncated IDX header ({len(data)} bytes, {ndim} dimensions need {header})")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise LatentAtlasError(
            f"{path}: IDX file {what}: dimensions {'×'.join(map(str, dims))} of {dtype.name} need "
            f"{expected} bytes, found {len(data)}")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=True)


def _idx_images(path: Path) -> np.ndarray:
    images = read_idx(path)
    if images.ndim != 3:
        raise LatentAtlasError(
            f"{path}: expected an IDX file of images with 3 dimensions (N×H×W), found {images.ndim} "
            f"({'×'.join(map(str, images.shape))})")
    if images.dtype != np.uint8:
        raise LatentAtlasError(f"{path}: expected unsigned-byte images, found {images.dtype}")
    return images


def _idx_labels(path: Path, n_images: int) -> np.ndarray:
    labels = read_idx(path)
    if labels.ndim != 1:
        raise LatentAtlasError(f"{path}: expected an IDX file of labels with 1 dimension, found {labels.ndim}")
    if labels.shape[0] != n_images:
        raise LatentAtlasError(f"{path}: {labels.shape[0]} labels for {n_images} images")
    if not np.issubdtype(labels.dtype, np.integer):
        raise LatentAtlasError(f"{path}: expected integer labels, found {labels.dtype}")
    return labels.astype(np.int64)


def _find(data_dir: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        if (data_dir / name).is_file():
            return data_dir / name
    return None


def load_fashion_mnist(data_dir: str | os.PathLike | None = None, split: str = "train") -> ImageSet:
    """Fashion-MNIST (or MNIST: same file names) from ``data_dir``; default the Debian package's folder.

    Looks for ``{train,t10k}-images-idx3-ubyte[.gz]`` and ``…-labels-idx1-ubyte[.gz]``; when they are
    missing the error names them and says how to install them.
    """
    if split not in _SPLIT_PREFIX:
        raise LatentAtlasError(f"split must be 'train' or 'test', got {split!r}")
    folder = Path(data_dir) if data_dir is not None else FASHION_MNIST_DIR
    prefix = _SPLIT_PREFIX[split]
    stems = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    found = [_find(folder, s) for s in stems] if folder.is_dir() else [None, None]
    if None in found:
        missing = [f"{s}.gz" for s, f in zip(stems, found) if f is None]
        where = f"folder {folder} does not exist" if not folder.is_dir() else f"missing in {folder}: {', '.join(missing)}"
        raise LatentAtlasError(
            f"Fashion-MNIST {split} set not found ({where}); install it with "
            f"`sudo apt-get install dataset-fashion-mnist` (files go to {FASHION_MNIST_DIR}) or give "
            f"a folder with the IDX files ({stems[0]}.gz, {stems[1]}.gz)")
    images = _idx_images(found[0])
    labels = _idx_labels(found[1], images.shape[0])
    names = FASHION_MNIST_LABELS if labels.size == 0 or labels.max() < len(FASHION_MNIST_LABELS) else None
    if labels.size and labels.min() < 0:
        raise LatentAtlasError(f"{found[1]}: negative label {labels.min()}")
    return ImageSet(images=images, labels=labels, label_names=list(names) if names else None, source=str(found[0]))


def _to_uint8(array: np.ndarray, source: str) -> np.ndarray:
    """Images as uint8 N×H×W; floats must lie in [0, 1], RGB(A) becomes luminance."""
    a = np.asarray(array)
    if a.ndim == 4 and a.shape[1] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
        a = np.moveaxis(a, 1, -1)  # N×C×H×W → N×H×W×C
    if a.ndim == 4:
        if a.shape[-1] == 1:
            a = a[..., 0]
        elif a.shape[-1] in (3, 4):
            a = a[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
            if np.issubdtype(np.asarray(array).dtype, np.integer):
                a = np.rint(a)
        else:
            raise LatentAtlasError(f"{source}: images of shape {a.shape}: expected N×H×W or N×H×W×C with C in 1, 3, 4")
    if a.ndim != 3:
        raise LatentAtlasError(f"{source}: images of shape {a.shape}: expected N×H×W (or with a channel axis)")
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if a.dtype == bool or not np.issubdtype(a.dtype, np.number):
        raise LatentAtlasError(f"{source}: images of dtype {a.dtype}: expected integers 0–255 or floats in [0, 1]")
    if a.size == 0:
        return np.zeros(a.shape, np.uint8)
    if not np.all(np.isfinite(a)):
        raise LatentAtlasError(f"{source}: images contain NaN or infinite values")
    lo, hi = float(a.min()), float(a.max())
    if np.issubdtype(a.dtype, np.integer) or (np.all(a == np.rint(a)) and hi > 1):
        if lo < 0 or hi > 255:
            raise LatentAtlasError(f"{source}: pixel values range {lo:g}…{hi:g}, expected 0–255")
        return a.astype(np.uint8)
    if lo < 0 or hi > 1:
        raise LatentAtlasError(f"{source}: float pixel values range {lo:g}…{hi:g}, expected [0, 1]")
    return np.rint(a * 255).astype(np.uint8)


def _load_npz(path: Path) -> ImageSet:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        what = "the file is empty" if path.stat().st_size == 0 else printable(str(exc)).strip()[:200]
        raise LatentAtlasError(f"{path}: cannot read as .npz: {what}") from None
    image_key = next((k for k in ("images", "x", "X") if k in arrays), None)
    if image_key is None:
        raise LatentAtlasError(f"{path}: no 'images' (or 'x') array; found {', '.join(arrays) or 'nothing'}")
    images = _to_uint8(arrays[image_key], f"{path}[{image_key}]")
    label_key = next((k for k in ("labels", "y", "Y") if k in arrays), None)
    labels = None
    if label_key is not None:
        labels = np.asarray(arrays[label_key])
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise LatentAtlasError(f"{path}[{label_key}]: expected a 1-D integer array, got {labels.dtype} {labels.shape}")
        if labels.shape[0] != images.shape[0]:
            raise LatentAtlasError(f"{path}[{label_key}]: {labels.shape[0]} labels for {images.shape[0]} images")
    names = [str(s) for s in arrays["label_names"]] if "label_names" in arrays else None
    return ImageSet(images=images, labels=labels, label_names=names, source=str(path))


def _read_picture(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError  # Pillow comes with matplotlib

    try:
        if path.stat().st_size == 0:
            raise LatentAtlasError(f"{path}: cannot read as an image: the file is empty")
        with Image.open(path) as im:
            return np.asarray(im.convert("L"), dtype=np.uint8)
    except LatentAtlasError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, MemoryError, Image.DecompressionBombError) as exc:
        # Pillow reports broken files as any of these (SyntaxError for bad PNG chunks, OSError when truncated).
        raise LatentAtlasError(f"{path}: cannot read as an image ({type(exc).__name__}: "
                               f"{printable(str(exc)).strip()[:200]})") from None


def _load_folder(folder: Path) -> ImageSet:
    """Images directly in ``folder`` (unlabelled) or in one sub-folder per class (labelled by sub-folder)."""
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if classes:
        files, labels = [], []
        for label, sub in enumerate(classes):
            for f in sorted(sub.iterdir()):
                if f.suffix.lower() in _IMAGE_SUFFIXES:
                    files.append(f)
                    labels.append(label)
        names: list[str] | None = [c.name for c in classes]
    else:
        files = sorted(f for f in folder.iterdir() if f.suffix.lower() in _IMAGE_SUFFIXES)
        labels, names = None, None
    if not files:
        raise LatentAtlasError(
            f"{folder}: no images found (looked for {', '.join(sorted(_IMAGE_SUFFIXES))} files, directly or in "
            f"one sub-folder per class)")
    pictures = []
    for f in files:
        pic = _read_picture(f)
        if pictures and pic.shape != pictures[0].shape:
            raise LatentAtlasError(
                f"{f}: size {pic.shape[1]}×{pic.shape[0]} differs from {files[0].name} "
                f"({pictures[0].shape[1]}×{pictures[0].shape[0]}); all images must have the same size")
        pictures.append(pic)
    return ImageSet(images=np.stack(pictures), labels=None if labels is None else np.asarray(labels),
                    label_names=names, source=str(folder))


def _load_idx_file(path: Path) -> ImageSet:
    images = _idx_images(path)
    labels, names = None, None
    if "images-idx3" in path.name:  # MNIST naming: a sibling labels file, when present, supplies the labels
        sibling = _find(path.parent, path.name.replace("images-idx3", "labels-idx1").removesuffix(".gz"))
        if sibling is not None:
            labels = _idx_labels(sibling, images.shape[0])
            if labels.size and labels.max() < len(FASHION_MNIST_LABELS) and "fashion" in str(path).lower():
                names = list(FASHION_MNIST_LABELS)
    return ImageSet(images=images, labels=labels, label_names=names, source=str(path))


def load_images(path: str | os.PathLike) -> ImageSet:
    """Images from ``path``: an ``.npz`` (arrays ``images``/``x`` and optional ``labels``/``y``), an IDX file
    (with its sibling labels file when there is one), or a folder of pictures (converted to grayscale;
    one sub-folder per class gives labels). A folder holding Fashion-MNIST IDX files gives its train set.
    """
    path = Path(path)
    if not path.exists():
        raise LatentAtlasError(f"{path}: no such file or folder")
    if path.is_dir():
        if _find(path, "train-images-idx3-ubyte") is not None:
            return load_fashion_mnist(path, "train")
        return _load_folder(path)
    if path.suffix.lower() == ".npz":
        return _load_npz(path)
    if path.suffix.lower() in _IMAGE_SUFFIXES:
        return ImageSet(images=_read_picture(path)[None], source=str(path))
    return _load_idx_file(path)


SPLITS = ("train", "test", "all")


def as_image_set(images, name: str = "images") -> ImageSet:
    """``images`` as an :class:`ImageSet`: an ImageSet is returned as is; a numpy array or torch tensor
    ``N×H×W`` (or ``N×1×H×W``) of uint8 pixels 0–255 or floats in [0, 1] is converted (floats are rounded to
    the nearest of 256 levels, as the training loop stores uint8)."""
    if isinstance(images, ImageSet):
        return images
    return ImageSet(images=_to_uint8(image_array(images, name), name), source=name)


def image_array(images, name: str = "images") -> np.ndarray:
    """``images`` (an ImageSet, a numpy array or a torch tensor, ``N×H×W`` or ``N×1×H×W``) as an N×H×W
    numpy array, pixels as given; one-line errors for anything else."""
    images = getattr(images, "images", images)
    if hasattr(images, "detach") and hasattr(images, "cpu"):  # a torch tensor, without importing torch
        images = images.detach().cpu().numpy()
    try:
        array = np.asarray(images)
    except Exception as exc:  # ragged lists and the like
        raise LatentAtlasError(f"{name}: cannot read as an array ({exc})") from None
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 3:
        raise LatentAtlasError(f"{name}: expected N×H×W images, got an array of shape {array.shape}")
    return array


def read_images(path: str | os.PathLike | None = None, split: str | None = None, *,
                limit: int | None = None) -> ImageSet:
    """Read grayscale images into memory.

    Parameters
    ----------
    path : str or path-like, optional
        ``None`` reads Fashion-MNIST from the Debian package ``dataset-fashion-mnist``
        (``/usr/share/datasets/fashion-mnist``). Otherwise a folder of MNIST-style IDX files
        (``train-images-idx3-ubyte[.gz]``, ``t10k-…``), an ``.npz`` (arrays ``images``/``x`` and optional
        ``labels``/``y``, ``label_names``), a single IDX file (with its sibling labels file when there is
        one), a picture, or a folder of pictures (converted to grayscale; one sub-folder per class gives
        labels).
    split : {"train", "test", "all"}, optional
        Which part of an IDX folder (default ``"train"``; ``"all"`` is train then test). Only IDX folders
        have splits: with a split, a folder is read as one (a missing file is an error saying so), and a file
        is an error.
    limit : int, optional
        Keep only the first ``limit`` images.

    Returns
    -------
    ImageSet
        ``images`` (uint8 ``N×H×W``), ``labels`` (int64 or None), ``label_names`` and ``source``.

    Raises
    ------
    LatentAtlasError
        One line naming the missing, empty or damaged file, or the bad argument.

    Example
    -------
    >>> from latentatlas import read_images
    >>> test = read_images(split="test")          # Fashion-MNIST's 10,000 test images
    >>> test.images.shape, test.label_names[test.labels[0]]
    ((10000, 28, 28), 'Ankle boot')
    """
    if split is not None and split not in SPLITS:
        raise LatentAtlasError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise LatentAtlasError(f"limit must be a positive integer, got {limit!r}")
    folder = FASHION_MNIST_DIR if path is None else Path(path)
    idx_folder = folder.is_dir() and _find(folder, "train-images-idx3-ubyte") is not None
    if path is None or idx_folder or (split is not None and not folder.is_file()):
        if split == "all":
            train, test = load_fashion_mnist(folder, "train"), load_fashion_mnist(folder, "test")
            images = ImageSet(images=np.concatenate([train.images, test.images]),
                              labels=np.concatenate([train.labels, test.labels]),
                              label_names=train.label_names, source=f"{train.source} + {test.source}")
        else:
            images = load_fashion_mnist(folder, split or "train")
    else:
        if split is not None:
            raise LatentAtlasError(f"{folder}: split={split!r} applies only to a folder of MNIST-style IDX files "
                                   "(train-* and t10k-*); a file has no splits")
        images = load_images(folder)
    if len(images) == 0:
        raise LatentAtlasError(f"{images.source}: no images")
    return images.head(None if limit is None else int(limit))
