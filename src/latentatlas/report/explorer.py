"""Data of the report's interactive latent explorers.

Everything a browser needs is computed here, in Python, and embedded in the page: the 2-D coordinates of
every projection (scaled to 16-bit integers), one sprite atlas image holding every thumbnail (a 16-level
grey PNG), and the ``k`` nearest neighbours of every point in the latent space (exact, scikit-learn). The
page only looks things up, so it works from disk with no server; Fashion-MNIST's 70,000 images make a file
of about 32 MB.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from latentatlas import runs
from latentatlas.errors import LatentAtlasError, printable

#: Plotly's qualitative palette ("D3"), so label colours match the matplotlib default cycle.
LABEL_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf"]
_GREYS = {"other": "#999999", "(none)": "#cccccc", "unlabelled": "#999999"}
PROJECTIONS = (("pca", "PCA"), ("tsne", "t-SNE"), ("umap", "UMAP"))
#: Thumbnails are stored with this many grey levels (4 bits a pixel): Fashion-MNIST's 70,000 images
#: make a 13 MB sprite instead of 29 MB at 256 levels, with no difference visible at hover size.
SPRITE_LEVELS = 16
_CODES, _LABELS, _LABEL_NAMES, _THUMBNAILS = runs.EMBEDDING_ARRAYS


@dataclass
class ExplorerData:
    """One explorer: the drawn points, their 2-D projections, labels and nearest neighbours.

    ``index`` holds each drawn point's row in the source (embedding rows or model items); ``coords`` maps
    a projection key to an (n_points, 2) array; ``neighbours`` (n_points, k) holds *source* rows (-1: none),
    ``distances`` the matching distances (Euclidean for image codes, cosine for item factors).
    """

    kind: str                               # "images" or "items"
    index: np.ndarray
    coords: dict[str, np.ndarray]
    groups: np.ndarray                      # group per drawn point; -1 = none
    group_names: list[str]
    neighbours: np.ndarray
    distances: np.ndarray
    n_total: int
    ids: list[str] | None = None            # items: the id of every source row
    names: list[str] | None = None          # items: the name of every source row ("" when unknown)
    thumbnails: np.ndarray | None = None    # images: (n_points, H, W) grey or (n_points, H, W, 3) colour, uint8
    colour_values: np.ndarray | None = None  # continuous colour per drawn point when there are no groups
    colour_title: str = ""
    extra: list[str] | None = None          # items: hover text after the name (e.g. "12 ratings"), per source row
    metric: str = "euclidean"
    notes: list[str] = field(default_factory=list)

    @property
    def n_points(self) -> int:
        return len(self.index)

    def label(self, source_row: int) -> str:
        """How a point is named on the page (the script builds the same text)."""
        if self.kind == "items":
            name = self.names[source_row] if self.names else ""
            return f"item {self.ids[source_row]}" + (f" · {name}" if name else "")
        pos = np.flatnonzero(self.index == source_row)
        group = self.groups[pos[0]] if len(pos) else -1
        return f"#{source_row}" + (f" · {self.group_names[group]}" if group >= 0 else "")


def projection_name(key: str) -> str:
    """Label of an embedding key: pca → PCA, tsne_p50 → t-SNE (perplexity 50)."""
    base, _, perplexity = key.partition("_p")
    name = dict(PROJECTIONS).get(base, key)
    return f"{name} (perplexity {perplexity})" if base == "tsne" and perplexity else name


def _projection_order(key: str) -> tuple[int, float, str]:
    base, _, perplexity = key.partition("_p")
    order = [k for k, _ in PROJECTIONS]
    try:
        p = float(perplexity) if perplexity else -1.0
    except ValueError:
        p = math.inf
    return (order.index(base) if base in order else len(order), p, key)


def _sample(n: int, max_points: int | None, seed: int) -> np.ndarray:
    if max_points is None or n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


#: Above this many multiply-adds (rows × points × dimensions), Euclidean neighbours are found by
#: nearest-neighbour descent (pynndescent, which UMAP uses) instead of an exact search. 70,000 codes of 32
#: dimensions are 1.6e11 and stay exact; 70,000 of 288 (the default autoencoder's) take 28 s this way,
#: finding 99.2 % of the true 8 nearest, against about 400 s exactly (benchmarks/RESULTS-explorer.md).
EXACT_BUDGET = 2e11
#: Neighbours kept per point during the descent: more than the 8 shown, which makes the 8 more accurate.
DESCENT_NEIGHBOURS = 16


def nearest_neighbours(x: np.ndarray, k: int, metric: str, rows: np.ndarray | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest other rows of ``x`` for each of ``rows`` (default all), self excluded.

    Exact (scikit-learn), except for a Euclidean search whose exact cost rows × len(x) × dimensions exceeds
    :data:`EXACT_BUDGET`: then approximate by nearest-neighbour descent (seeded, single-threaded, so the
    same codes give the same neighbours). Distances are exact distances in the full space either way.
    """
    from sklearn.neighbors import NearestNeighbors

    rows = np.arange(len(x)) if rows is None else np.asarray(rows, dtype=np.int64)
    k = min(k, len(x) - 1)
    if k <= 0:
        return np.zeros((len(rows), 0), dtype=np.int64), np.zeros((len(rows), 0))
    if not reduced_search(len(rows), x.shape, metric):
        nn = NearestNeighbors(n_neighbors=k + 1, metric=metric, algorithm="brute" if metric == "cosine" else "auto")
        dist, idx = nn.fit(x).kneighbors(x[rows])
        return _drop_self(rows, idx, dist, k)
    from pynndescent import NNDescent

    index = NNDescent(np.asarray(x, dtype=np.float32), n_neighbors=max(k + 1, DESCENT_NEIGHBOURS), random_state=0,
                      n_jobs=1, low_memory=True)
    idx, dist = index.neighbor_graph
    return _drop_self(rows, idx[rows], dist[rows].astype(np.float64), k)


def reduced_search(n_rows: int, shape: tuple[int, ...], metric: str = "euclidean") -> bool:
    """Whether :func:`nearest_neighbours` re-ranks PCA candidates instead of searching exactly."""
    return metric == "euclidean" and float(n_rows) * shape[0] * shape[1] > EXACT_BUDGET


def _drop_self(rows: np.ndarray, idx: np.ndarray, dist: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``k`` columns other than each row's own index (with duplicate points it need not come
    first; when duplicates crowd it out, the farthest column is dropped instead)."""
    idx, dist = idx[:, :k + 1], dist[:, :k + 1]
    is_self = idx == rows[:, None]
    is_self[~is_self.any(axis=1), -1] = True
    keep = ~is_self
    return idx[keep].reshape(len(rows), k), dist[keep].reshape(len(rows), k)


def _load_embedding(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {name: z[name] for name in z.files}
    except (OSError, ValueError, EOFError) as exc:
        raise LatentAtlasError(f"{path}: cannot read embedding file ({printable(exc)})") from None


def embedding_coords(data: Mapping[str, np.ndarray], path: Path, n: int) -> dict[str, np.ndarray]:
    """Every distinct 2-D projection of an embedding file, in the order PCA, t-SNE by perplexity, UMAP."""
    coords: dict[str, np.ndarray] = {}
    keys = [f[len(runs.COORDS_PREFIX):] for f in data if f.startswith(runs.COORDS_PREFIX)]
    for key in sorted(keys, key=_projection_order):
        c = np.asarray(data[runs.COORDS_PREFIX + key], dtype=np.float64)
        if c.shape != (n, 2):
            raise LatentAtlasError(f"{path}: {runs.COORDS_PREFIX}{key} has shape {c.shape}, expected ({n}, 2)")
        if not np.isfinite(c).all():
            raise LatentAtlasError(f"{path}: {runs.COORDS_PREFIX}{key} contains NaN or infinity")
        # `images embed` stores its first t-SNE twice (coords_tsne and coords_tsne_p<perplexity>): draw it once,
        # under the name that says its perplexity.
        same = next((other for other, o in coords.items() if np.array_equal(c, o)), None)
        if same is None:
            coords[key] = c
        elif same == "tsne" and key.startswith("tsne_p"):
            coords = {(key if k == same else k): v for k, v in coords.items()}
    coords = {key: coords[key] for key in sorted(coords, key=_projection_order)}
    if not coords:
        raise LatentAtlasError(f"{path}: embedding file has no 2-D coordinates ({runs.COORDS_PREFIX}pca, "
                               f"{runs.COORDS_PREFIX}tsne, {runs.COORDS_PREFIX}umap)")
    return coords


def image_explorer(embedding_path: str | Path, *, max_points: int | None = None, k: int = 8,
                   seed: int = 0) -> ExplorerData:
    """Explorer data from an ``images embed`` embedding file (see :mod:`latentatlas.runs`).

    Every code is drawn unless ``max_points`` caps them (a seeded sample); neighbours are searched among the
    drawn points in the full latent code space (Euclidean), so every neighbour can be shown with its image.
    """
    path = Path(embedding_path)
    data = _load_embedding(path)
    for name in (_CODES, _LABELS, _THUMBNAILS):
        if name not in data:
            raise LatentAtlasError(f"{path}: embedding file has no array '{name}'")
    codes = np.asarray(data[_CODES], dtype=np.float32).reshape(len(data[_CODES]), -1)
    n = len(codes)
    coords = embedding_coords(data, path, n)
    if not np.isfinite(codes).all():
        raise LatentAtlasError(f"{path}: the codes contain NaN or infinity")
    labels = np.asarray(data[_LABELS]).astype(np.int64).reshape(-1)
    thumbs = np.asarray(data[_THUMBNAILS])
    if len(labels) != n or len(thumbs) != n:
        raise LatentAtlasError(f"{path}: codes, labels and thumbnails have different lengths "
                               f"({n}, {len(labels)}, {len(thumbs)})")
    if thumbs.ndim == 4 and thumbs.shape[-1] == 1:
        thumbs = thumbs[..., 0]
    if thumbs.ndim != 3 and not (thumbs.ndim == 4 and thumbs.shape[-1] == 3):
        raise LatentAtlasError(f"{path}: thumbnails must be (n, height, width) grey or (n, height, width, 3) colour "
                               f"images, got shape {thumbs.shape}")
    names = [str(s) for s in data.get(_LABEL_NAMES, np.array([], dtype=str))]

    idx = _sample(n, max_points, seed)
    codes, labels, thumbs = codes[idx], labels[idx], thumbs[idx]
    nb, dist = nearest_neighbours(codes, k, "euclidean")

    def name(lab: int) -> str:
        if lab < 0:  # `images embed` writes -1 for images without labels
            return "unlabelled"
        return names[lab] if lab < len(names) else f"label {lab}"

    group_ids = sorted(set(labels.tolist()))
    remap = np.zeros(max(group_ids) - min(group_ids) + 1, dtype=np.int64)
    remap[np.array(group_ids) - min(group_ids)] = np.arange(len(group_ids))
    notes = []
    if len(idx) < n:
        notes.append(f"Showing a seeded sample of {len(idx):,} of {n:,} embedded images (seed {seed}).")
    how = ("; found by nearest-neighbour descent, which finds about 99 % of the exact neighbours"
           if reduced_search(len(codes), codes.shape) else "")
    notes.append(f"Neighbours: the {nb.shape[1]} nearest drawn images in the {codes.shape[1]}-dimensional "
                 f"latent code space (Euclidean distance{how}), not in the 2-D projection.")
    return ExplorerData(
        kind="images", index=idx, coords={key: c[idx] for key, c in coords.items()},
        groups=remap[labels - min(group_ids)], group_names=[name(g) for g in group_ids],
        neighbours=idx[nb], distances=dist, n_total=n, thumbnails=thumbs, metric="euclidean", notes=notes)


def load_item_factors(model_path: str | Path):
    """Item factors, item ids, per-item training counts (None when unknown) and the model's item names
    (None when it has none) of a saved model."""
    from latentatlas.ratings.workflow import load_model

    model = load_model(model_path)   # raises LatentAtlasError naming the file
    # The embeddings that `ratings similar` uses too (the rating model's factors; posterior means for bayes),
    # so the explorer shows the same neighbours.
    factors = np.asarray(model.item_embeddings_, dtype=np.float64)
    ids = np.asarray(model.item_ids_)
    seen = getattr(model, "seen_items_", None)
    counts = None if seen is None else np.bincount(np.asarray(seen, dtype=np.int64), minlength=len(ids))
    return factors, ids, counts, getattr(model, "item_names_", None)


def _lookup(source, ids: np.ndarray, column: str | None = None) -> list[Any] | None:
    """The value of every id in ``source``: a mapping (tried with the id itself, then its text: ids read
    from a file are text, a model's may be integers), or a :class:`~latentatlas.ratings.names.Names` (its
    names, or its metadata ``column``). None where ``source`` is empty."""
    if source is None:
        return None
    if hasattr(source, "lookup"):                        # latentatlas.ratings.names.Names
        values = source.lookup(ids) if column is None else source.column(column, ids)
        return [None if v is None or v == "" else (v.item() if hasattr(v, "item") else v) for v in values]
    if not source:
        return None
    out = []
    for i in ids.tolist():
        value = source.get(i)
        if value is None:
            value = source.get(str(i))
        out.append(value)
    return out


#: Categories beyond this many (the most frequent first) are drawn together as "other".
MAX_CATEGORIES = 10


def _categories(values: list[Any]) -> tuple[np.ndarray, list[str], str]:
    """Group per value, group names and a note: multi-valued text ("Comedy|Drama", "Pizza, Bars") counts as
    its first value; beyond :data:`MAX_CATEGORIES` the rarest are "other"; missing values are "(none)"."""
    import re
    from collections import Counter

    text = ["(none)" if v is None or str(v).strip() == "" else re.split(r"\s*[|,;]\s*", str(v).strip())[0] or "(none)"
            for v in values]
    multi = any(v is not None and re.search(r"[|,;]", str(v)) for v in values)
    counts = Counter(text)
    keep = [c for c, _ in counts.most_common() if c != "(none)"][:MAX_CATEGORIES]
    other = any(t not in keep and t != "(none)" for t in text)
    names = sorted(keep) + (["other"] if other else []) + (["(none)"] if "(none)" in counts else [])
    pos = {g: j for j, g in enumerate(names)}
    groups = np.array([pos[t] if t in pos else pos["other"] for t in text], dtype=np.int64)
    note = ("the first of several values" if multi else "") + \
        (f"{'; ' if multi else ''}the {MAX_CATEGORIES} most frequent, the rest as other" if other else "")
    return groups, names, note


def item_explorer(model_path: str | Path, *, max_points: int | None = None, k: int = 10, seed: int = 0,
                  item_names=None, colour_by=None, colour_title: str = "") -> ExplorerData:
    """Explorer data for a recommender's item factors: 2-D PCA, nearest items by cosine similarity.

    PCA and neighbours use every item; every item is drawn unless ``max_points`` caps them (a seeded
    sample; neighbours are still searched among all items and listed by name).

    ``item_names``: item id → name, as a mapping or a :class:`~latentatlas.ratings.names.Names` (default: the
    model's ``item_names_``, if it has them). ``colour_by``: item id → a metadata value (genre, city, …),
    as a mapping, or the name of a metadata column of those names (``"genres"``); ``colour_title`` names it.
    Text values colour by category (the legend filters them), numbers by a continuous scale; without
    ``colour_by``, items are coloured by their number of training ratings.
    """
    from sklearn.decomposition import PCA

    factors, ids, counts, model_names = load_item_factors(model_path)
    n = len(factors)
    if factors.ndim != 2 or n < 3:
        raise LatentAtlasError(f"{model_path}: model has too few items ({n}) to explore")
    if not np.isfinite(factors).all():
        raise LatentAtlasError(f"{model_path}: the item factors contain NaN or infinity")
    if item_names is None:
        item_names = model_names
    names = _lookup(item_names, ids)
    names = None if names is None else ["" if v is None else str(v) for v in names]
    # Items without training ratings keep zero (or initial) factors; cosine of a zero vector is undefined.
    norms = np.linalg.norm(factors, axis=1)
    usable_idx = np.flatnonzero(norms > 1e-12)
    coords = PCA(n_components=2, random_state=seed).fit_transform(factors) if factors.shape[1] >= 2 \
        else np.column_stack([factors[:, 0], np.zeros(n)])

    idx = _sample(n, max_points, seed)
    pos_in_usable = -np.ones(n, dtype=np.int64)
    pos_in_usable[usable_idx] = np.arange(len(usable_idx))
    queried = np.flatnonzero(pos_in_usable[idx] >= 0)
    nb, dist = nearest_neighbours(factors[usable_idx], k, "cosine", rows=pos_in_usable[idx[queried]])
    kk = nb.shape[1]
    neighbours = -np.ones((len(idx), kk), dtype=np.int64)
    distances = np.zeros((len(idx), kk))
    neighbours[queried] = usable_idx[nb]
    distances[queried] = dist

    groups, group_names, colour, colour_note = -np.ones(len(idx), dtype=np.int64), [], None, ""
    if isinstance(colour_by, str):
        column = colour_by
        if item_names is None or not hasattr(item_names, "column"):
            raise LatentAtlasError(f"cannot colour items by {column!r}: no item names with metadata columns "
                                   f"(the model has none; pass names read with latentatlas.ratings.names)")
        values = _lookup(item_names, ids, column=column)
        colour_title = colour_title or column
    else:
        values = _lookup(colour_by, ids)
    if values is not None:
        drawn = [values[i] for i in idx]
        numeric = all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in drawn
                      if v is not None)
        if numeric:
            colour = np.array([np.nan if v is None else float(v) for v in drawn])
        else:
            groups, group_names, colour_note = _categories(drawn)
        colour_title = colour_title or "metadata"
    elif counts is not None and len(counts) == n:
        colour, colour_title = np.log10(1 + counts[idx].astype(np.float64)), "log10(1 + ratings)"
    else:
        colour, colour_title = norms[idx], "‖factor‖"
    notes = []
    if len(idx) < n:
        notes.append(f"Showing a seeded sample of {len(idx):,} of {n:,} items (seed {seed}); "
                     "neighbours are searched among all items.")
    notes.append(f"Neighbours: the {kk} items with the most similar factor vectors (cosine similarity "
                 f"in the {factors.shape[1]}-dimensional factor space).")
    if group_names:
        notes.append(f"Colour: {colour_title}" + (f" ({colour_note})." if colour_note else "."))
    extra = [f"{int(c):,} ratings" for c in counts] if counts is not None and len(counts) == n else None
    return ExplorerData(
        kind="items", index=idx, coords={"pca": coords[idx]}, groups=groups, group_names=group_names,
        neighbours=neighbours, distances=distances, n_total=n, ids=[str(i) for i in ids.tolist()],
        names=names, colour_values=colour, colour_title=colour_title, extra=extra, metric="cosine", notes=notes)


# --------------------------------------------------------------------------------------- page encoding

def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def scaled_coords(xy: np.ndarray) -> dict[str, Any]:
    """(n, 2) coordinates as little-endian uint16 pairs (base64) with the affine map back: 1/65,535 of the
    range is far below a screen pixel, and it halves float32's size."""
    xy = np.asarray(xy, dtype=np.float64)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    q = np.rint((xy - lo) / span * 65535).astype("<u2")
    return {"lo": lo.tolist(), "span": span.tolist(), "xy": _b64(q)}


def sprite_geometry(n: int, cell: tuple[int, int]) -> dict[str, int]:
    """Columns, rows and pixel size of a sprite of ``n`` cells of ``cell`` = (height, width) pixels, as
    square as possible; cell ``i`` is at column ``i % cols``, row ``i // cols``."""
    cols = max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    return {"cols": cols, "rows": rows, "cell_h": int(cell[0]), "cell_w": int(cell[1]),
            "width": cols * int(cell[1]), "height": rows * int(cell[0])}


def _to_uint8(images: np.ndarray) -> np.ndarray:
    arr = np.asarray(images)
    if arr.dtype == np.uint8:
        return arr
    arr = np.asarray(arr, dtype=np.float64)
    if arr.size and np.nanmax(arr) <= 1.0:
        arr = arr * 255
    return np.clip(np.nan_to_num(arr), 0, 255).astype(np.uint8)


def _colour_sprite_png(thumbs: np.ndarray) -> tuple[bytes, dict[str, int]]:
    from PIL import Image

    n, h, w, c = thumbs.shape
    geo = sprite_geometry(n, (h, w))
    cells = np.full((geo["cols"] * geo["rows"], h, w, c), 255, dtype=np.uint8)
    cells[:n] = thumbs
    sheet = cells.reshape(geo["rows"], geo["cols"], h, w, c).transpose(0, 2, 1, 3, 4).reshape(
        geo["height"], geo["width"], c)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(sheet), mode="RGB").save(buf, format="PNG", compress_level=1)
    return buf.getvalue(), geo


def sprite_png(thumbnails: np.ndarray) -> tuple[bytes, dict[str, int]]:
    """All thumbnails (n, H, W) in one grid image: a PNG of :data:`SPRITE_LEVELS` grey levels, 4 bits a
    pixel; colour thumbnails (n, H, W, 3) make an 8-bit RGB PNG. Returns the PNG and its
    :func:`sprite_geometry`."""
    from PIL import Image

    thumbs = _to_uint8(thumbnails)
    if thumbs.ndim == 4:
        return _colour_sprite_png(thumbs)
    n, h, w = thumbs.shape
    geo = sprite_geometry(n, (h, w))
    cells = np.zeros((geo["cols"] * geo["rows"], h, w), dtype=np.uint8)
    step = 255 / (SPRITE_LEVELS - 1)
    cells[:n] = np.rint(thumbs / step).astype(np.uint8)
    sheet = cells.reshape(geo["rows"], geo["cols"], h, w).transpose(0, 2, 1, 3).reshape(geo["height"], geo["width"])
    img = Image.frombytes("P", (geo["width"], geo["height"]), sheet.tobytes())
    img.putpalette([int(round(v * step)) for v in range(SPRITE_LEVELS) for _ in range(3)])
    buf = io.BytesIO()
    # zlib level 1: 14 MB for Fashion-MNIST in under 3 s, against 13 MB in 9 s at level 6.
    img.save(buf, format="PNG", bits=4, compress_level=1)
    return buf.getvalue(), geo


def explorer_payload(data: ExplorerData) -> tuple[dict[str, Any], dict[str, Any], bytes | None]:
    """What the page's script reads: the JSON data block (what the first drawing needs, with ``n_points``
    and ``n_total``), the later block (the other projections and the neighbour tables, placed at the end of
    the page so they never delay the drawing) and the sprite PNG (None without thumbnails)."""
    coords = []
    for key, xy in data.coords.items():
        coords.append({"key": key, "name": projection_name(key), **scaled_coords(xy)})
    k = data.neighbours.shape[1] if data.neighbours.ndim == 2 else 0
    dist = np.asarray(data.distances, dtype=np.float64)
    dmax = float(dist.max()) if dist.size else 1.0
    dscale = dmax / 65535 if dmax > 0 else 1.0
    payload: dict[str, Any] = {
        "kind": data.kind, "n_points": data.n_points, "n_total": data.n_total, "metric": data.metric,
        "projections": coords,
        "index": _b64(data.index.astype("<i4")),
        "groups": {"names": data.group_names,
                   "colours": [_GREYS.get(name, LABEL_COLOURS[g % len(LABEL_COLOURS)])
                               for g, name in enumerate(data.group_names)],
                   "of": _b64(data.groups.astype("<i2"))} if data.group_names else None,
        "k": k, "neighbours": _b64(data.neighbours.astype("<i4")),
        "distances": _b64(np.rint(dist / dscale).astype("<u2")), "distance_scale": dscale,
        "ids": data.ids, "names": data.names, "extra": data.extra,
        "colour": None,
    }
    if data.colour_values is not None:
        v = np.asarray(data.colour_values, dtype=np.float64)
        finite = np.isfinite(v)
        lo, hi = (float(v[finite].min()), float(v[finite].max())) if finite.any() else (0.0, 1.0)
        # 1/65,535 of the range: indistinguishable on a colour scale; NaN (no value) is drawn grey.
        q = np.where(finite, np.rint((np.where(finite, v, lo) - lo) / ((hi - lo) or 1.0) * 65534), 65535)
        payload["colour"] = {"title": data.colour_title, "lo": lo, "hi": hi, "values": _b64(q.astype("<u2"))}
    sprite = None
    if data.thumbnails is not None:
        sprite, payload["sprite"] = sprite_png(data.thumbnails)
    later = {key: payload.pop(key) for key in ("neighbours", "distances")}
    later["projections"] = [p.pop("xy") for p in coords[1:]]
    return payload, later, sprite
