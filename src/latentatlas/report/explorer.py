"""Data and Plotly figures for the report's interactive latent explorers.

Everything a browser needs is computed here, in Python, and embedded in the page as JSON: the 2-D
coordinates of every projection, a thumbnail per point (PNG data URI), and the ``k`` nearest neighbours
of every point. The page only looks things up, so it works from disk with no server.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from latentatlas.errors import LatentAtlasError

#: Plotly's qualitative palette ("D3"), so label colours match the matplotlib default cycle.
LABEL_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf"]
PROJECTIONS = (("pca", "PCA"), ("tsne", "t-SNE"), ("umap", "UMAP"))


@dataclass
class ExplorerData:
    """One explorer: points, their 2-D projections, hover content and nearest neighbours.

    ``coords`` maps a projection name to an (n, 2) array; ``neighbours`` (n, k) holds indices into the
    points, ``distances`` the matching distances (Euclidean for image codes, cosine for item factors).
    """

    kind: str                           # "images" or "items"
    coords: dict[str, np.ndarray]
    text: list[str]                     # hover / list label of each point
    groups: np.ndarray                  # int group (label) per point; -1 = none
    group_names: list[str]
    neighbours: np.ndarray
    distances: np.ndarray
    thumbnails: list[str] | None = None  # PNG data URIs
    colour_values: np.ndarray | None = None  # continuous colour when there are no groups
    colour_title: str = ""
    n_total: int = 0                    # points in the source before sampling
    metric: str = "euclidean"
    notes: list[str] = field(default_factory=list)
    all_labels: list[str] | None = None  # items: labels of every item, for neighbours outside the sample
    source_index: np.ndarray | None = None  # items: each drawn point's index among all items

    @property
    def n(self) -> int:
        return len(self.text)


def png_data_uri(image: np.ndarray) -> str:
    """A greyscale or RGB uint8 image as a ``data:image/png;base64,…`` URI."""
    from PIL import Image

    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = np.clip(np.asarray(arr, dtype=np.float64) * (255 if arr.max() <= 1.0 else 1), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def projection_name(key: str) -> str:
    """Button label of an embedding key: pca → PCA, tsne_p50 → t-SNE (perplexity 50)."""
    base, _, perplexity = key.partition("_p")
    name = dict(PROJECTIONS).get(base, key)
    return f"{name} (perplexity {perplexity})" if base == "tsne" and perplexity else name


def _projection_order(key: str) -> tuple[int, str]:
    base = key.partition("_p")[0]
    order = [k for k, _ in PROJECTIONS]
    return (order.index(base) if base in order else len(order), key)


def _sample(n: int, max_points: int, seed: int) -> np.ndarray:
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


def _neighbours(x: np.ndarray, k: int, metric: str, rows: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest other rows of ``x`` for each of ``rows`` (default all), self excluded; brute force.

    Only the queried rows cost time, so neighbours of a drawn sample among many items stay cheap.
    """
    from sklearn.neighbors import NearestNeighbors

    rows = np.arange(len(x)) if rows is None else np.asarray(rows, dtype=np.int64)
    k = min(k, len(x) - 1)
    if k <= 0:
        return np.zeros((len(rows), 0), dtype=np.int64), np.zeros((len(rows), 0))
    nn = NearestNeighbors(n_neighbors=k + 1, metric=metric, algorithm="brute").fit(x)
    dist, idx = nn.kneighbors(x[rows])
    # Drop each point itself; with duplicate points it need not be in column 0.
    out_i = np.empty((len(rows), k), dtype=np.int64)
    out_d = np.empty((len(rows), k))
    for r, self_index in enumerate(rows):
        keep = idx[r] != self_index
        out_i[r] = idx[r][keep][:k]
        out_d[r] = dist[r][keep][:k]
    return out_i, out_d


def image_explorer(embedding_path: str | Path, *, max_points: int = 2000, k: int = 8,
                   seed: int = 0) -> ExplorerData:
    """Explorer data from an ``images embed`` ``embedding.npz`` (see the run-directory contract).

    A seeded sample of at most ``max_points`` points is kept; neighbours are searched among them in the
    full latent code space (Euclidean), so every neighbour can be shown with its image.
    """
    path = Path(embedding_path)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {name: z[name] for name in z.files}
    except (OSError, ValueError) as exc:
        raise LatentAtlasError(f"{path}: cannot read embedding file ({exc})") from None
    for name in ("codes", "labels", "thumbnails"):
        if name not in data:
            raise LatentAtlasError(f"{path}: embedding file has no array '{name}'")
    codes = np.asarray(data["codes"], dtype=np.float32).reshape(len(data["codes"]), -1)
    n = len(codes)
    coords_all: dict[str, np.ndarray] = {}
    for name in sorted((f[len("coords_"):] for f in data if f.startswith("coords_")), key=_projection_order):
        c = np.asarray(data[f"coords_{name}"], dtype=np.float64)
        # `images embed` stores its first t-SNE twice (coords_tsne and coords_tsne_p30): draw it once.
        if not any(c.shape == other.shape and np.array_equal(c, other) for other in coords_all.values()):
            coords_all[name] = c
    if not coords_all:
        raise LatentAtlasError(f"{path}: embedding file has no 2-D coordinates (coords_pca, coords_tsne, coords_umap)")
    for key, c in coords_all.items():
        if c.shape != (n, 2):
            raise LatentAtlasError(f"{path}: coords_{key} has shape {c.shape}, expected ({n}, 2)")
    if not np.isfinite(codes).all():
        raise LatentAtlasError(f"{path}: the codes contain NaN or infinity")
    labels = np.asarray(data["labels"]).astype(np.int64)
    thumbs = np.asarray(data["thumbnails"])
    if len(labels) != n or len(thumbs) != n:
        raise LatentAtlasError(f"{path}: codes, labels and thumbnails have different lengths "
                               f"({n}, {len(labels)}, {len(thumbs)})")
    names = [str(s) for s in data.get("label_names", np.array([], dtype=str))]

    idx = _sample(n, max_points, seed)
    codes, labels, thumbs = codes[idx], labels[idx], thumbs[idx]
    nb, dist = _neighbours(codes, k, "euclidean")

    def name(lab: int) -> str:
        if lab < 0:  # `images embed` writes -1 for images without labels
            return "unlabelled"
        return names[lab] if lab < len(names) else f"label {lab}"

    group_ids = sorted(set(labels.tolist()))
    remap = {g: j for j, g in enumerate(group_ids)}
    notes = []
    if len(idx) < n:
        notes.append(f"Showing a seeded sample of {len(idx)} of {n} embedded images (seed {seed}).")
    notes.append(f"Neighbours: the {nb.shape[1]} nearest shown images in the {codes.shape[1]}-dimensional "
                 "latent code space (Euclidean distance), not in the 2-D projection.")
    return ExplorerData(
        kind="images",
        coords={key: c[idx] for key, c in coords_all.items()},
        text=[f"#{int(i)} · {name(int(lab))}" for i, lab in zip(idx, labels)],
        groups=np.array([remap[int(lab)] for lab in labels], dtype=np.int64),
        group_names=[name(g) for g in group_ids],
        neighbours=nb, distances=dist,
        thumbnails=[png_data_uri(t) for t in thumbs],
        n_total=n, metric="euclidean", notes=notes)


def load_item_factors(model_path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Item factors, item ids and (when the model has them) per-item training counts of a saved model.

    The counts are how many training ratings each item had (the model keeps the seen items per user).
    """
    from latentatlas.ratings.model import LatentFactorModel

    model = LatentFactorModel.load(model_path)   # raises LatentAtlasError naming the file
    factors = np.asarray(model.item_factors_, dtype=np.float64)
    ids = np.asarray(model.item_ids_)
    seen = getattr(model, "seen_items_", None)
    counts = None if seen is None else np.bincount(np.asarray(seen, dtype=np.int64), minlength=len(ids))
    return factors, ids, counts


def item_explorer(model_path: str | Path, *, max_points: int = 2000, k: int = 10, seed: int = 0,
                  item_names: dict[str, str] | None = None) -> ExplorerData:
    """Explorer data for a recommender's item factors: 2-D PCA, nearest items by cosine similarity.

    PCA and neighbours use every item; a seeded sample of at most ``max_points`` is drawn on the page.
    Neighbours are listed by id, so they need not be among the drawn points.
    """
    from sklearn.decomposition import PCA

    factors, ids, counts = load_item_factors(model_path)
    n = len(factors)
    if n < 3 or factors.ndim != 2:
        raise LatentAtlasError(f"{model_path}: model has too few items ({n}) to explore")
    if not np.isfinite(factors).all():
        raise LatentAtlasError(f"{model_path}: the item factors contain NaN or infinity")
    # Items without training ratings keep zero (or initial) factors; cosine of a zero vector is undefined.
    norms = np.linalg.norm(factors, axis=1)
    usable = norms > 1e-12
    coords = PCA(n_components=2, random_state=seed).fit_transform(factors) if factors.shape[1] >= 2 \
        else np.column_stack([factors[:, 0], np.zeros(n)])
    usable_idx = np.flatnonzero(usable)

    idx = _sample(n, max_points, seed)
    labels = [str(i) if item_names is None else f"{i} · {item_names.get(str(i), '')}".rstrip(" ·")
              for i in ids]
    pos_in_usable = -np.ones(n, dtype=np.int64)
    pos_in_usable[usable_idx] = np.arange(len(usable_idx))
    queried = idx[pos_in_usable[idx] >= 0]
    nb, dist = _neighbours(factors[usable], k, "cosine", rows=pos_in_usable[queried])
    kk = nb.shape[1]
    neighbours = -np.ones((len(idx), kk), dtype=np.int64)
    distances = np.zeros((len(idx), kk))
    row_of = {int(i): q for q, i in enumerate(queried)}
    for r, i in enumerate(idx):
        if int(i) in row_of:
            neighbours[r] = usable_idx[nb[row_of[int(i)]]]
            distances[r] = dist[row_of[int(i)]]
    notes = []
    if len(idx) < n:
        notes.append(f"Showing a seeded sample of {len(idx)} of {n} items (seed {seed}); "
                     "neighbours are searched among all items.")
    notes.append(f"Neighbours: the {kk} items with the most similar factor vectors (cosine similarity "
                 f"in the {factors.shape[1]}-dimensional factor space).")
    if counts is not None and len(counts) == n:
        colour, colour_title = np.log10(1 + counts[idx].astype(np.float64)), "log10(1 + ratings)"
        labels = [f"{label} · {int(c):,} ratings" for label, c in zip(labels, counts)]
    else:
        colour, colour_title = norms[idx], "‖factor‖"
    return ExplorerData(
        kind="items", coords={"pca": coords[idx]},
        text=[f"item {labels[i]}" for i in idx],
        groups=-np.ones(len(idx), dtype=np.int64), group_names=[],
        neighbours=neighbours, distances=distances,
        colour_values=colour, colour_title=colour_title, n_total=n, metric="cosine", notes=notes,
        all_labels=[f"item {label}" for label in labels], source_index=idx)


def explorer_payload(data: ExplorerData) -> dict[str, Any]:
    """The JSON the page's script reads: hover text, thumbnails and neighbour lists, per point."""
    all_labels = data.all_labels
    drawn = {int(j): r for r, j in enumerate(data.source_index)} if data.source_index is not None else {}
    nbrs = []
    for r in range(data.n):
        row = []
        for j, d in zip(data.neighbours[r], data.distances[r]):
            if j < 0:
                continue
            if data.kind == "images":
                row.append({"i": int(j), "d": round(float(d), 4)})
            else:
                # "i": the neighbour's place among the drawn points (-1: not drawn), so the page can ring it.
                row.append({"i": drawn.get(int(j), -1), "label": all_labels[int(j)], "sim": round(1.0 - float(d), 4)})
        nbrs.append(row)
    return {"kind": data.kind, "text": data.text, "thumbs": data.thumbnails, "neighbours": nbrs,
            "metric": data.metric}


def _list(values: np.ndarray) -> list[float]:
    # Plain JSON lists: Plotly's base64 typed arrays are not decoded inside button (restyle) arguments.
    return np.round(np.asarray(values, dtype=np.float64), 4).tolist()


def explorer_figure(data: ExplorerData):
    """The Plotly scatter: one trace per label (or one coloured trace), projections switchable by buttons.

    Every point's ``customdata`` is its index in :func:`explorer_payload`'s lists.
    """
    import plotly.graph_objects as go

    projections = [(key, projection_name(key)) for key in data.coords]
    first = projections[0][0]
    fig = go.Figure()
    if data.group_names:
        traces = [np.flatnonzero(data.groups == g) for g in range(len(data.group_names))]
        for g, members in enumerate(traces):
            fig.add_trace(go.Scatter(
                x=_list(data.coords[first][members, 0]), y=_list(data.coords[first][members, 1]), mode="markers",
                name=data.group_names[g], customdata=members.tolist(), text=[data.text[m] for m in members],
                hovertemplate="%{text}<extra></extra>",
                marker={"size": 6, "opacity": 0.8, "color": LABEL_COLOURS[g % len(LABEL_COLOURS)]}))
    else:
        members = np.arange(data.n)
        traces = [members]
        fig.add_trace(go.Scatter(
            x=_list(data.coords[first][:, 0]), y=_list(data.coords[first][:, 1]), mode="markers", name="items",
            customdata=members.tolist(), text=data.text, hovertemplate="%{text}<extra></extra>",
            showlegend=False,
            marker={"size": 6, "opacity": 0.8, "color": _list(data.colour_values), "colorscale": "Viridis",
                    "showscale": True, "colorbar": {"title": {"text": data.colour_title, "side": "right"}}}))
    # The last trace rings the clicked point and its neighbours; the page's script fills it.
    fig.add_trace(go.Scatter(x=[], y=[], mode="markers", name="neighbours", hoverinfo="skip", showlegend=False,
                             marker={"size": 13, "color": "rgba(0,0,0,0)", "line": {"width": 2, "color": "#111"}}))
    buttons = [{"label": name, "method": "restyle",
                "args": [{"x": [_list(data.coords[key][m, 0]) for m in traces],
                          "y": [_list(data.coords[key][m, 1]) for m in traces]}, list(range(len(traces)))]}
               for key, name in projections]
    layout: dict[str, Any] = {
        "height": 560, "margin": {"l": 30, "r": 20, "t": 50, "b": 30},
        "hovermode": "closest", "legend": {"itemsizing": "constant"}, "template": "plotly_white",
        "xaxis": {"showticklabels": False, "zeroline": False}, "yaxis": {"showticklabels": False, "zeroline": False},
    }
    if len(buttons) > 1:
        layout["updatemenus"] = [{"type": "buttons", "direction": "right", "x": 0.09, "y": 1.02, "xanchor": "left",
                                  "yanchor": "bottom", "buttons": buttons, "showactive": True}]
        layout["annotations"] = [{"text": "projection:", "x": 0, "y": 1.035, "xref": "paper", "yref": "paper",
                                  "xanchor": "left", "yanchor": "bottom", "showarrow": False}]
    if len(projections) == 1:
        name = projections[0][1]
        layout["xaxis"]["title"] = {"text": f"{name} 1"}
        layout["yaxis"]["title"] = {"text": f"{name} 2"}
    fig.update_layout(**layout)
    return fig
