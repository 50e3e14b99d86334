"""Figures of the image capability: embeddings as thumbnails or coloured points, interpolations, grids.

Every function takes grey images (``n×H×W``) or colour ones (``n×3×H×W`` as the models use them, or
``n×H×W×3`` as pictures are stored), uint8 0–255 or floats in [0, 1]. Grey images are drawn as ink on
white (dark = high values, as Fashion-MNIST is usually shown), colour ones as they are."""

from __future__ import annotations

from typing import Sequence

import matplotlib
import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.lines import Line2D

from latentatlas.errors import LatentAtlasError
from latentatlas.plots.style import figure, styled


def _label_colours(n_classes: int) -> np.ndarray:
    cmap = matplotlib.colormaps["tab10" if n_classes <= 10 else "tab20"]
    return np.array([to_rgb(cmap(i % cmap.N)) for i in range(max(n_classes, 1))])


def _names(label_names: Sequence[str] | None, classes: np.ndarray) -> list[str]:
    if label_names is None or len(label_names) == 0:
        return [str(c) for c in classes]
    names = list(label_names)
    out = []
    for c in classes:
        ci = int(c) if np.issubdtype(np.asarray(c).dtype, np.integer) else None
        out.append(str(names[ci]) if ci is not None and 0 <= ci < len(names) else str(c))
    return out


def _check_coords(coords) -> np.ndarray:
    xy = np.asarray(coords, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise LatentAtlasError(f"coords must be an (n, 2) array, got shape {xy.shape}")
    if len(xy) == 0:
        raise LatentAtlasError("coords: no points to draw")
    if not np.isfinite(xy).all():
        raise LatentAtlasError("coords contain NaN or infinity")
    return xy


def _pictures(images, name: str = "images") -> np.ndarray:
    """Images as drawn: ``n×H×W`` (grey) or ``n×H×W×3`` (colour), as given (uint8 or floats)."""
    imgs = np.asarray(images)
    if imgs.ndim == 4 and imgs.shape[1] in (1, 3) and imgs.shape[-1] not in (1, 3):
        imgs = np.moveaxis(imgs, 1, -1)
    if imgs.ndim == 4 and imgs.shape[-1] == 1:
        imgs = imgs[..., 0]
    if imgs.ndim not in (3, 4) or (imgs.ndim == 4 and imgs.shape[-1] != 3):
        raise LatentAtlasError(f"{name} must be (n, H, W) grey or (n, 3, H, W) / (n, H, W, 3) colour images, got "
                               f"shape {imgs.shape}")
    return imgs


def _picture(img) -> np.ndarray:
    """One image as drawn: ``H×W`` or ``H×W×3``."""
    return _pictures(np.asarray(img)[None], "image")[0]


def _check_labels(labels, n: int) -> np.ndarray | None:
    if labels is None:
        return None
    y = np.asarray(labels)
    if y.shape != (n,):
        raise LatentAtlasError(f"labels must have one entry per point ({n}), got shape {y.shape}")
    return y


@styled
def label_scatter(coords, labels, label_names: Sequence[str] | None = None, title: str = "",
                  point_size: float | None = None):
    """Points at ``coords`` (n, 2) coloured by class label, with a legend naming the classes."""
    xy = _check_coords(coords)
    y = _check_labels(labels, len(xy))
    if y is None:
        raise LatentAtlasError("label_scatter needs labels")
    classes, idx = np.unique(y, return_inverse=True)
    colours = _label_colours(len(classes))
    fig, ax = figure(7.0, 6.0)
    size = point_size if point_size is not None else float(np.clip(4000.0 / len(xy), 0.5, 20.0))
    # Shuffled drawing order so no class is buried under the one drawn last.
    order = np.random.default_rng(0).permutation(len(xy))
    ax.scatter(xy[order, 0], xy[order, 1], c=colours[idx[order]], s=size, linewidths=0, alpha=0.8,
               rasterized=True)
    handles = [Line2D([], [], marker="o", linestyle="", color=colours[i], label=name)
               for i, name in enumerate(_names(label_names, classes))]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize=8)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    if title:
        ax.set_title(title)
    return fig


@styled
def thumbnail_scatter(coords, thumbnails, labels=None, label_names: Sequence[str] | None = None,
                      title: str = "", canvas_px: int = 1600, thumb_px: int | None = None):
    """Each image of ``thumbnails`` (n, H, W) grey or (n, 3, H, W) / (n, H, W, 3) colour drawn at its 2-D
    position in ``coords`` (n, 2).

    The thumbnails are composited into one RGB canvas of ``canvas_px`` pixels a side (much faster than one
    matplotlib artist per image). A grey thumbnail's ink is its brightness, tinted with the colour of its
    class when ``labels`` are given; a colour thumbnail is pasted as it is, framed in its class colour. Pass
    only the sample of points to draw.
    """
    xy = _check_coords(coords)
    thumbs = _pictures(thumbnails, "thumbnails")
    if len(thumbs) != len(xy):
        raise LatentAtlasError(f"thumbnails must be (n, H, W) with n = {len(xy)} points, got shape {thumbs.shape}")
    y = _check_labels(labels, len(xy))
    if canvas_px < 64:
        raise LatentAtlasError(f"canvas_px must be at least 64, got {canvas_px}")
    ink = thumbs.astype(np.float32)
    if thumbs.dtype == np.uint8:
        ink /= 255.0
    ink = np.clip(ink, 0.0, 1.0)
    colour = ink.ndim == 4
    h, w = ink.shape[1:3]
    if thumb_px is not None and thumb_px != h:
        from scipy.ndimage import zoom

        f = thumb_px / h
        ink = np.clip(zoom(ink, (1, f, f, 1) if colour else (1, f, f), order=1), 0.0, 1.0)
        h, w = ink.shape[1:3]

    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    inner = canvas_px - max(h, w)
    px = ((xy - lo) / span * inner).astype(int)  # top-left corner of each thumbnail
    canvas = np.ones((canvas_px, canvas_px, 3), dtype=np.float32)
    if y is not None:
        classes, idx = np.unique(y, return_inverse=True)
        colours = _label_colours(len(classes))[idx]
    else:
        classes, colours = None, np.zeros((len(xy), 3))
    for (cx, cy), img, col in zip(px, ink, colours):
        row = canvas_px - cy - h  # image rows grow downwards, the y axis upwards
        region = canvas[row:row + h, cx:cx + w]
        if colour:
            region[:] = img
            if y is not None:  # a one-pixel frame in the class colour
                region[[0, -1], :] = col
                region[:, [0, -1]] = col
            continue
        a = img[:, :, None]
        region *= 1.0 - a
        region += a * col
    fig, ax = figure(9.0, 9.0)
    # Canvas pixel edges in data units, so the axes keep the embedding's own coordinates.
    scale = span / inner
    extent = (lo[0], lo[0] + canvas_px * scale[0], lo[1], lo[1] + canvas_px * scale[1])
    ax.imshow(canvas, extent=extent, origin="upper", interpolation="antialiased", aspect="auto")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    if classes is not None:
        pal = _label_colours(len(classes))
        handles = [Line2D([], [], marker="s", linestyle="", color=pal[i], label=name)
                   for i, name in enumerate(_names(label_names, classes))]
        ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def _show(ax, img, title: str | None = None):
    img = _picture(img)
    if img.ndim == 3:  # colour: as it is
        ax.imshow(img if img.dtype == np.uint8 else np.clip(img, 0.0, 1.0), interpolation="nearest")
    else:
        ax.imshow(img, cmap="gray_r", vmin=0.0, vmax=1.0 if img.dtype != np.uint8 else 255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize=8)


@styled
def interpolation_grid(rows: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
                       names: Sequence[tuple[str, str]] | None = None, title: str = "", positions=None):
    """One row per pair: original A, the decoded frames titled 0% … 100%, original B.

    ``rows`` holds ``(image_a, image_b, frames)`` with frames (steps, H, W) or (steps, 3, H, W) from
    :func:`latentatlas.images.latent.interpolate`; every row must have the same number of steps.
    ``names`` optionally gives a ``(name_a, name_b)`` caption per row; ``positions`` the place of each frame
    on the line from A (0) to B (1) when the frames are not evenly spaced from end to end.
    """
    if len(rows) == 0:
        raise LatentAtlasError("interpolation_grid needs at least one pair")
    if names is not None and len(names) != len(rows):
        raise LatentAtlasError(f"names: {len(names)} given for {len(rows)} rows")
    steps = {len(r[2]) for r in rows}
    if len(steps) != 1 or min(steps) < 2:
        raise LatentAtlasError(f"every row needs the same number (>= 2) of frames, got {sorted(steps)}")
    steps = steps.pop()
    where = np.linspace(0.0, 1.0, steps) if positions is None else np.asarray(positions, dtype=float)
    if where.shape != (steps,):
        raise LatentAtlasError(f"positions: {where.size} given for {steps} frames")
    pct = [f"{round(100.0 * p, 1):g}%" for p in where]
    ncols = steps + 2
    fig, axes = figure(1.05 * ncols, 1.25 * len(rows) + 0.4, len(rows), ncols, squeeze=False)
    for r, (a, b, frames) in enumerate(rows):
        name_a, name_b = names[r] if names is not None else ("A", "B")
        _show(axes[r, 0], a, name_a)
        for j in range(steps):
            _show(axes[r, j + 1], frames[j], pct[j])
        _show(axes[r, -1], b, name_b)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


@styled
def image_grid(images, titles: Sequence[str] | None = None, ncols: int = 10, title: str = ""):
    """Images (n, H, W) grey or (n, 3, H, W) / (n, H, W, 3) colour in a grid of ``ncols`` columns, each
    optionally titled."""
    imgs = _pictures(images)
    if len(imgs) == 0:
        raise LatentAtlasError(f"images must be a non-empty (n, H, W) array, got shape {imgs.shape}")
    if titles is not None and len(titles) != len(imgs):
        raise LatentAtlasError(f"titles: {len(titles)} given for {len(imgs)} images")
    if ncols < 1:
        raise LatentAtlasError(f"ncols must be positive, got {ncols}")
    ncols = min(ncols, len(imgs))
    nrows = -(-len(imgs) // ncols)
    fig, axes = figure(1.05 * ncols, 1.15 * nrows + 0.3, nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        if i < len(imgs):
            _show(ax, imgs[i], titles[i] if titles is not None else None)
        else:
            ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


@styled
def reconstruction_grid(originals, reconstructions, title: str = ""):
    """Originals (top row) above their reconstructions (bottom row); (n, H, W) or colour images each."""
    a, b = _pictures(originals, "originals"), _pictures(reconstructions, "reconstructions")
    if len(a) != len(b) or len(a) == 0 or a.shape[1:] != b.shape[1:]:
        raise LatentAtlasError(f"originals {a.shape} and reconstructions {b.shape} must be the same non-empty shape")
    n = len(a)
    fig, axes = figure(1.05 * n, 2.6, 2, n, squeeze=False)
    for j in range(n):
        _show(axes[0, j], a[j])
        _show(axes[1, j], b[j])
    axes[0, 0].set_ylabel("original", fontsize=8)
    axes[1, 0].set_ylabel("decoded", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
