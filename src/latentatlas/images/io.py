"""Image readers: IDX files (gzipped or raw; MNIST, Fashion-MNIST), ``.npz`` arrays and folders of images.

:func:`read_images` is the public entry point. Every reader returns an :class:`ImageSet`: one ``uint8``
array held in memory, ``N×H×W`` for grayscale images and ``N×C×H×W`` for colour ones (C = 3, RGB), plus
optional integer labels. The channel count comes from the data: a folder of pictures is colour when any
picture has a pixel whose red, green and blue differ, so grey scans saved as RGB stay grayscale.
``image_size`` resizes and centre-crops every image to one size keeping its aspect ratio (Pillow); a folder
of pictures of mixed sizes gets the most common size when no size is given. Nothing is ever downloaded; a
missing data set is an error that says what is missing and how to get it, and a damaged file is an error
naming the file.
"""

from __future__ import annotations

import gzip
import math
import os
import zipfile
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
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
#: Pillow modes read as one grey channel; every other mode is read as RGB (alpha is dropped).
_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
#: Largest side ``image_size`` accepts (a 4096×4096 colour image is 48 MB).
MAX_SIDE = 4096
#: Threads that decode pictures (Pillow releases the GIL while decoding and resizing).
READ_THREADS = min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


@dataclass(frozen=True)
class ImageSet:
    """Images in memory.

    ``images`` is ``uint8`` ``N×H×W`` (grayscale) or ``N×C×H×W`` (colour, C = 3); ``labels`` an ``int64``
    array of length N or None; ``label_names`` the name of each label value (index = label) or None;
    ``source`` says where the images came from.
    """

    images: np.ndarray
    labels: np.ndarray | None = None
    label_names: list[str] | None = None
    source: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        images = np.asarray(self.images)
        if images.ndim == 4 and images.shape[1] == 1:
            images = images[:, 0]
        if images.dtype != np.uint8 or images.ndim not in (3, 4):
            raise LatentAtlasError(
                f"{self.source or 'images'}: expected uint8 images of shape N×H×W or N×C×H×W, got "
                f"{images.dtype} {images.shape}")
        object.__setattr__(self, "images", images)
        if self.labels is not None:
            labels = np.asarray(self.labels)
            if labels.shape != (images.shape[0],):
                raise LatentAtlasError(
                    f"{self.source or 'labels'}: {labels.shape[0] if labels.ndim else 0} labels for "
                    f"{images.shape[0]} images")
            object.__setattr__(self, "labels", labels.astype(np.int64, copy=False))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        h, w = self.shape
        kind = "grey" if self.channels == 1 else f"{self.channels}-channel colour"
        labels = "" if self.labels is None else f", {len(self.label_names or np.unique(self.labels))} classes"
        noun = "image" if len(self) == 1 else "images"
        return f"ImageSet({len(self):,} {kind} {noun} {h}×{w}{labels}, source={printable(self.source)[:80]!r})"

    @property
    def shape(self) -> tuple[int, int]:
        """Height and width of every image."""
        return int(self.images.shape[-2]), int(self.images.shape[-1])

    @property
    def channels(self) -> int:
        """1 for grayscale images (``N×H×W``), C for colour ones (``N×C×H×W``)."""
        return 1 if self.images.ndim == 3 else int(self.images.shape[1])

    def channels_last(self) -> np.ndarray:
        """The images as pictures are drawn: ``N×H×W`` (grey) or ``N×H×W×C`` (colour)."""
        return self.images if self.images.ndim == 3 else np.moveaxis(self.images, 1, -1)

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

    def resized(self, image_size) -> "ImageSet":
        """The images resized and centre-cropped to ``image_size`` (see :func:`resize_images`); self when they
        already have that size."""
        size = check_image_size(image_size)
        if size is None or size == self.shape:
            return self
        return ImageSet(images=resize_images(self.images, size), labels=self.labels, label_names=self.label_names,
                        source=self.source, meta=dict(self.meta))

    def with_channels(self, channels: int) -> "ImageSet":
        """The images with ``channels`` channels: grey → colour repeats the grey value, colour → grey takes the
        luminance (0.299 R + 0.587 G + 0.114 B); self when they already have them."""
        if channels == self.channels:
            return self
        if channels == 1:
            images = _luminance(self.images, axis=1)
        elif self.channels == 1 and channels == 3:
            images = np.repeat(self.images[:, None], 3, axis=1)
        else:
            raise LatentAtlasError(f"{self.source or 'images'}: cannot turn {self.channels}-channel images into "
                                   f"{channels}-channel ones")
        return ImageSet(images=images, labels=self.labels, label_names=self.label_names, source=self.source,
                        meta=dict(self.meta))


def _luminance(a: np.ndarray, axis: int) -> np.ndarray:
    """ITU-R 601 luminance of RGB(A) ``a`` along ``axis``, rounded to uint8 for integer input."""
    rgb = np.take(a, [0, 1, 2], axis=axis).astype(np.float64)
    grey = np.tensordot(rgb, np.array([0.299, 0.587, 0.114]), axes=([axis], [0]))
    if np.issubdtype(a.dtype, np.integer):
        return np.rint(grey).astype(np.uint8)
    return grey


def check_image_size(image_size) -> tuple[int, int] | None:
    """``image_size`` (None, one side ``S`` for S×S, or ``(height, width)``; a string ``"S"`` or ``"HxW"`` too)
    as ``(height, width)``, each side 1..:data:`MAX_SIDE`."""
    if image_size is None:
        return None
    value = image_size
    if isinstance(value, str):
        try:
            parts = [int(p) for p in value.lower().replace("×", "x").split("x")]
        except ValueError:
            raise LatentAtlasError(f"image_size={printable(value)!r}: expected a side (e.g. 64) or HxW (e.g. 48x64)") from None
        value = parts[0] if len(parts) == 1 else tuple(parts)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (int(value), int(value))
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 1 <= v <= MAX_SIDE
                       for v in value)):
        raise LatentAtlasError(f"image_size={printable(repr(image_size))[:60]}: expected a side or (height, width), "
                               f"each an integer from 1 to {MAX_SIDE}")
    return int(value[0]), int(value[1])


def _fit_picture(picture, size: tuple[int, int]):
    """A Pillow image scaled (keeping its aspect ratio) to cover ``size`` = (height, width), then
    centre-cropped to it. No resampling happens when the scale is 1 (a pure crop)."""
    from PIL import Image

    th, tw = size
    w, h = picture.size
    scale = max(th / h, tw / w)
    if scale != 1.0:
        nw, nh = max(tw, round(w * scale)), max(th, round(h * scale))
        method = Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC
        picture = picture.resize((nw, nh), method, reducing_gap=3.0 if scale < 0.5 else None)
        w, h = nw, nh
    left, top = (w - tw) // 2, (h - th) // 2
    return picture.crop((left, top, left + tw, top + th))


def resize_images(images: np.ndarray, image_size) -> np.ndarray:
    """uint8 images ``N×H×W`` or ``N×C×H×W`` resized and centre-cropped to ``image_size`` keeping the aspect
    ratio: each is scaled so that it covers the new size (Lanczos down, bicubic up), then its centre is cut
    out. A side that already fits is only cropped."""
    from PIL import Image

    size = check_image_size(image_size)
    images = np.asarray(images)
    if size is None or tuple(images.shape[-2:]) == size:
        return images
    colour = images.ndim == 4
    out = np.empty((len(images), *images.shape[1:-2], *size), np.uint8)
    for i, img in enumerate(images):
        if colour:
            planes = [np.asarray(_fit_picture(Image.fromarray(np.ascontiguousarray(p)), size)) for p in img]
            out[i] = np.stack(planes)
        else:
            out[i] = np.asarray(_fit_picture(Image.fromarray(np.ascontiguousarray(img)), size))
    return out


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


def _to_uint8(array: np.ndarray, source: str, grayscale: bool = False) -> np.ndarray:
    """Images as uint8 ``N×H×W`` (grey) or ``N×3×H×W`` (colour); floats must lie in [0, 1]. A channel axis
    may come first (N×C×H×W) or last (N×H×W×C), with C in 1, 3, 4; alpha is dropped, and ``grayscale``
    turns colour into luminance (0.299 R + 0.587 G + 0.114 B)."""
    a = np.asarray(array)
    if a.ndim == 4 and a.shape[1] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
        a = np.moveaxis(a, 1, -1)  # N×C×H×W → N×H×W×C
    if a.ndim == 4:
        if a.shape[-1] == 1:
            a = a[..., 0]
        elif a.shape[-1] in (3, 4):
            a = a[..., :3]
            if grayscale:
                a = _luminance(a, axis=-1)
        else:
            raise LatentAtlasError(f"{source}: images of shape {a.shape}: expected N×H×W or N×H×W×C with C in 1, 3, 4")
    if a.ndim not in (3, 4):
        raise LatentAtlasError(f"{source}: images of shape {a.shape}: expected N×H×W (or with a channel axis)")
    if a.dtype == bool or not np.issubdtype(a.dtype, np.number):
        raise LatentAtlasError(f"{source}: images of dtype {a.dtype}: expected integers 0–255 or floats in [0, 1]")
    if a.dtype != np.uint8 and a.size:
        if not np.all(np.isfinite(a)):
            raise LatentAtlasError(f"{source}: images contain NaN or infinite values")
        lo, hi = float(a.min()), float(a.max())
        if np.issubdtype(a.dtype, np.integer) or (np.all(a == np.rint(a)) and hi > 1):
            if lo < 0 or hi > 255:
                raise LatentAtlasError(f"{source}: pixel values range {lo:g}…{hi:g}, expected 0–255")
            a = a.astype(np.uint8)
        else:
            if lo < 0 or hi > 1:
                raise LatentAtlasError(f"{source}: float pixel values range {lo:g}…{hi:g}, expected [0, 1]")
            a = np.rint(a * 255).astype(np.uint8)
    elif a.dtype != np.uint8:
        a = np.zeros(a.shape, np.uint8)
    if a.ndim == 4:
        a = np.moveaxis(a, -1, 1)  # N×H×W×C → N×C×H×W
    return np.ascontiguousarray(a)


def _load_npz(path: Path, grayscale: bool = False) -> ImageSet:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        what = "the file is empty" if path.stat().st_size == 0 else printable(str(exc)).strip()[:200]
        raise LatentAtlasError(f"{path}: cannot read as .npz: {what}") from None
    image_key = next((k for k in ("images", "x", "X") if k in arrays), None)
    if image_key is None:
        raise LatentAtlasError(f"{path}: no 'images' (or 'x') array; found {', '.join(arrays) or 'nothing'}")
    images = _to_uint8(arrays[image_key], f"{path}[{image_key}]", grayscale)
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


def _open_picture(path: Path):
    """``path`` opened lazily by Pillow (size and mode known, pixels not yet decoded); one-line errors."""
    from PIL import Image, UnidentifiedImageError  # Pillow comes with matplotlib

    try:
        if path.stat().st_size == 0:
            raise LatentAtlasError(f"{path}: cannot read as an image: the file is empty")
        return Image.open(path)
    except LatentAtlasError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, MemoryError, Image.DecompressionBombError) as exc:
        raise _picture_error(path, exc) from None


def _picture_error(path: Path, exc: BaseException) -> LatentAtlasError:
    # Pillow reports broken files as any of these (SyntaxError for bad PNG chunks, OSError when truncated).
    return LatentAtlasError(f"{path}: cannot read as an image ({type(exc).__name__}: "
                            f"{printable(str(exc)).strip()[:200]})")


def _read_picture(path: Path, size: tuple[int, int] | None = None, grayscale: bool = False) -> np.ndarray:
    """One picture as uint8 ``H×W`` (grey modes, or ``grayscale``) or ``H×W×3`` (every other mode, as RGB),
    resized and centre-cropped to ``size`` when given."""
    from PIL import Image

    im = _open_picture(path)
    try:
        with im:
            mode = "L" if grayscale or im.mode in _GREY_MODES else "RGB"
            if size is not None and im.format == "JPEG":
                # Let the JPEG decoder scale down by 1/2, 1/4 or 1/8 while it decodes (much faster for photos
                # far larger than the wanted size); it never goes below the size that still covers the target.
                scale = max(size[0] / im.height, size[1] / im.width)
                if scale < 0.5:
                    im.draft(mode, (math.ceil(im.width * scale), math.ceil(im.height * scale)))
            im = im.convert(mode)
            if size is not None and (im.height, im.width) != size:
                im = _fit_picture(im, size)
            return np.asarray(im, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError, Image.DecompressionBombError) as exc:
        raise _picture_error(path, exc) from None


def _is_grey(picture: np.ndarray) -> bool:
    return picture.ndim == 2 or bool((picture[..., 0] == picture[..., 1]).all() and (picture[..., 1] == picture[..., 2]).all())


def _read_pictures(files: list[Path], image_size=None, grayscale: bool = False, out_path: Path | None = None
                   ) -> np.ndarray:
    """The pictures in ``files`` as one uint8 array, ``N×H×W`` when every one is grey (or ``grayscale``),
    else ``N×3×H×W``. They are decoded in parallel straight into the result (held once in memory): first
    every header is read for its size and mode, then each picture is decoded, resized to the common size
    (``image_size``, or the most common size among them) and written to its place. With ``out_path`` (a
    ``.npy``) the result is written there instead of into memory, and returned memory-mapped."""
    size = check_image_size(image_size)
    sizes, grey_modes = [], True
    for f in files:
        with _open_picture(f) as im:
            sizes.append((im.height, im.width))
            grey_modes &= im.mode in _GREY_MODES
    if size is None:
        counts = Counter(sizes)
        size = max(counts, key=lambda s: (counts[s], -sizes.index(s)))  # most common, ties: first seen
        if len(counts) > 1:
            import logging

            logging.getLogger("latentatlas").warning(
                "%s: pictures of %d sizes; all resized and centre-cropped to the most common, %d×%d (height×width); "
                "image_size chooses another", files[0].parent, len(counts), size[0], size[1])
    grey = grayscale or grey_modes
    shape = (len(files), *(() if grey else (3,)), *size)
    tmp = None
    if out_path is None:
        out = np.empty(shape, np.uint8)
    else:
        tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp.npy")
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
    colour_seen = np.zeros(len(files), bool)

    def read(i: int) -> None:
        pic = _read_picture(files[i], size, grayscale)
        if pic.ndim == 2:
            out[i] = pic if grey else pic[None]
        else:
            out[i] = np.moveaxis(pic, -1, 0)
            colour_seen[i] = not _is_grey(pic)

    try:
        if len(files) > 1 and READ_THREADS > 1:
            with ThreadPoolExecutor(READ_THREADS) as pool:
                for _ in pool.map(read, range(len(files))):
                    pass
        else:
            for i in range(len(files)):
                read(i)
        if not grey and not colour_seen.any():  # RGB files of grey pictures: one channel
            if tmp is None:
                out = np.ascontiguousarray(out[:, 0])
            else:
                grey_tmp = tmp.with_name(tmp.name + ".grey.npy")
                one = np.lib.format.open_memmap(grey_tmp, mode="w+", dtype=np.uint8, shape=(shape[0], *size))
                one[:] = out[:, 0]
                one.flush()
                del out, one
                os.replace(grey_tmp, tmp)
                out = None
        if tmp is not None:
            if out is not None:
                out.flush()
                del out
            os.replace(tmp, out_path)
            return np.load(out_path, mmap_mode="c")
    except BaseException:
        if tmp is not None:  # a damaged picture, Ctrl-C, a full disk: no half-written cache is left
            for leftover in (tmp, tmp.with_name(tmp.name + ".grey.npy")):
                leftover.unlink(missing_ok=True)
        raise
    return out


def _folder_files(folder: Path) -> tuple[list[Path], list[int] | None, list[str] | None]:
    """The pictures directly in ``folder`` (unlabelled) or in one sub-folder per class (labelled by
    sub-folder), sorted, with their labels and the class names."""
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if classes:
        files, labels = [], []
        for label, sub in enumerate(classes):
            for f in sorted(sub.iterdir()):
                if f.suffix.lower() in _IMAGE_SUFFIXES:
                    files.append(f)
                    labels.append(label)
        return files, labels, [c.name for c in classes]
    return sorted(f for f in folder.iterdir() if f.suffix.lower() in _IMAGE_SUFFIXES), None, None


#: Bumped when the cached array would differ for the same files (a change in how pictures are read).
_CACHE_VERSION = 1


def _cache_key(folder: Path, files: list[Path], size, grayscale: bool) -> str:
    import hashlib

    h = hashlib.sha256(f"{_CACHE_VERSION}\0{size}\0{bool(grayscale)}\n".encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def _load_folder(folder: Path, image_size=None, grayscale: bool = False, cache=None) -> ImageSet:
    """Images directly in ``folder`` (unlabelled) or in one sub-folder per class (labelled by sub-folder);
    with ``cache`` (a ``.npy`` path) decoded once into that file and memory-mapped from it afterwards."""
    files, labels, names = _folder_files(folder)
    if not files:
        raise LatentAtlasError(
            f"{folder}: no images found (looked for {', '.join(sorted(_IMAGE_SUFFIXES))} files, directly or in "
            f"one sub-folder per class)")
    images = None
    if cache is not None:
        images = _cached_pictures(folder, files, image_size, grayscale, Path(cache))
    if images is None:
        images = _read_pictures(files, image_size, grayscale)
    return ImageSet(images=images, labels=None if labels is None else np.asarray(labels), label_names=names,
                    source=str(folder))


def _cached_pictures(folder: Path, files: list[Path], image_size, grayscale: bool, cache: Path) -> np.ndarray:
    """The pictures from the cache file when it was made from exactly these files (names, sizes, modification
    times) with the same options; else decoded into it. Returned memory-mapped copy-on-write: changing the
    array never changes the file."""
    import json
    import logging

    if cache.suffix != ".npy":
        raise LatentAtlasError(f"cache={str(cache)!r}: expected a file name ending in .npy")
    if cache.is_dir():
        raise LatentAtlasError(f"cache={str(cache)!r}: is a folder, expected a .npy file")
    key = _cache_key(folder, files, check_image_size(image_size), grayscale)
    meta_path = cache.with_suffix(".json")
    if cache.is_file() and meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if isinstance(meta, dict) and meta.get("key") == key:
                images = np.load(cache, mmap_mode="c")
                if images.dtype == np.uint8 and images.ndim in (3, 4) and len(images) == len(files):
                    return images
        except (OSError, ValueError):
            pass
        logging.getLogger("latentatlas").warning("%s: cache does not match the pictures of %s; reading them again",
                                                 cache, folder)
    cache.parent.mkdir(parents=True, exist_ok=True)
    images = _read_pictures(files, image_size, grayscale, out_path=cache)
    from latentatlas.fsutil import write_text

    write_text(meta_path, json.dumps({"key": key, "folder": str(folder), "n": len(files),
                                      "shape": list(images.shape)}))
    return images


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


def _read_path(path: str | os.PathLike, image_size=None, grayscale: bool = False, cache=None) -> ImageSet:
    """(:func:`read_images`' reader of one path.) Images from ``path``: an ``.npz`` (arrays ``images``/``x`` and optional ``labels``/``y``), an IDX file
    (with its sibling labels file when there is one), or a folder of pictures (one sub-folder per class gives
    labels). A folder holding Fashion-MNIST IDX files gives its train set. ``image_size``, ``grayscale`` and
    ``cache`` as in :func:`read_images`.
    """
    path = Path(path)
    size = check_image_size(image_size)
    if not path.exists():
        raise LatentAtlasError(f"{path}: no such file or folder")
    if cache is not None and (not path.is_dir() or _find(path, "train-images-idx3-ubyte") is not None):
        raise LatentAtlasError(f"cache={str(cache)!r}: only a folder of pictures is cached; {path} is not one")
    if path.is_dir():
        if _find(path, "train-images-idx3-ubyte") is not None:
            images = load_fashion_mnist(path, "train")
        else:
            return _load_folder(path, size, grayscale, cache)
    elif path.suffix.lower() == ".npz":
        images = _load_npz(path, grayscale)
    elif path.suffix.lower() in _IMAGE_SUFFIXES:
        return ImageSet(images=_read_pictures([path], size, grayscale), source=str(path))
    else:
        images = _load_idx_file(path)
    return images.resized(size)


SPLITS = ("train", "test", "all")


def as_image_set(images, name: str = "images") -> ImageSet:
    """``images`` as an :class:`ImageSet`: an ImageSet is returned as is; a numpy array or torch tensor
    ``N×H×W``, ``N×C×H×W`` or ``N×H×W×C`` (C in 1, 3) of uint8 pixels 0–255 or floats in [0, 1] is converted
    (floats are rounded to the nearest of 256 levels, as the training loop stores uint8)."""
    if isinstance(images, ImageSet):
        return images
    return ImageSet(images=_to_uint8(image_array(images, name), name), source=name)


def image_array(images, name: str = "images") -> np.ndarray:
    """``images`` (an ImageSet, a numpy array or a torch tensor, ``N×H×W``, ``N×C×H×W`` or ``N×H×W×C`` with
    C in 1, 3) as a numpy array ``N×H×W`` (grey) or ``N×C×H×W`` (colour), pixels as given; one-line errors
    for anything else."""
    images = getattr(images, "images", images)
    if hasattr(images, "detach") and hasattr(images, "cpu"):  # a torch tensor, without importing torch
        images = images.detach().cpu().numpy()
    try:
        array = np.asarray(images)
    except Exception as exc:  # ragged lists and the like
        raise LatentAtlasError(f"{name}: cannot read as an array ({exc})") from None
    if array.ndim == 4 and array.shape[1] not in (1, 3) and array.shape[-1] in (1, 3):
        array = np.moveaxis(array, -1, 1)  # N×H×W×C → N×C×H×W
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim not in (3, 4) or (array.ndim == 4 and array.shape[1] != 3):
        raise LatentAtlasError(f"{name}: expected N×H×W (grey) or N×3×H×W (colour) images, got an array of "
                               f"shape {array.shape}")
    return array


def read_images(path: str | os.PathLike | None = None, split: str | None = None, *,
                limit: int | None = None, image_size=None, grayscale: bool = False, cache=None) -> ImageSet:
    """Read images into memory: grayscale ``N×H×W`` or colour ``N×3×H×W``, as the data are.

    Parameters
    ----------
    path : str or path-like, optional
        ``None`` reads Fashion-MNIST from the Debian package ``dataset-fashion-mnist``
        (``/usr/share/datasets/fashion-mnist``). Otherwise a folder of MNIST-style IDX files
        (``train-images-idx3-ubyte[.gz]``, ``t10k-…``), an ``.npz`` (arrays ``images``/``x`` and optional
        ``labels``/``y``, ``label_names``; grey N×H×W or colour with the channel axis first or last), a
        single IDX file (with its sibling labels file when there is one), a picture, or a folder of pictures
        (one sub-folder per class gives labels; colour when any picture has colour, pictures of mixed sizes
        get the most common size unless ``image_size`` is given).
    split : {"train", "test", "all"}, optional
        Which part of an IDX folder (default ``"train"``; ``"all"`` is train then test). Only IDX folders
        have splits: with a split, a folder is read as one (a missing file is an error saying so), and a file
        is an error.
    limit : int, optional
        Keep only the first ``limit`` images.
    image_size : int or (int, int), optional
        Resize every image to this side (or ``(height, width)``), keeping its aspect ratio: scaled to cover
        the size, then centre-cropped. Default: the images' own size.
    grayscale : bool
        Turn colour images into grey ones (luminance 0.299 R + 0.587 G + 0.114 B).
    cache : path, optional
        For a folder of pictures: a ``.npy`` file to decode them into (never all in memory at once) and to
        memory-map them from on later calls, while the folder's files (names, sizes, modification times)
        and the options are the same; a ``.json`` beside it records what it holds.

    Returns
    -------
    ImageSet
        ``images`` (uint8 ``N×H×W`` or ``N×3×H×W``), ``labels`` (int64 or None), ``label_names`` and
        ``source``.

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
    size = check_image_size(image_size)
    folder = FASHION_MNIST_DIR if path is None else Path(path)
    idx_folder = folder.is_dir() and _find(folder, "train-images-idx3-ubyte") is not None
    if cache is not None and (path is None or idx_folder):
        raise LatentAtlasError(f"cache={str(cache)!r}: only a folder of pictures is cached, not IDX files")
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
        images = _read_path(folder, size, grayscale, cache)
    if len(images) == 0:
        raise LatentAtlasError(f"{images.source}: no images")
    images = images.head(None if limit is None else int(limit))
    if grayscale and images.channels != 1:
        images = images.with_channels(1)
    return images.resized(size)
