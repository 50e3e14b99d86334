"""What the report says: one :class:`Section` per run (by kind) and the comparison of trained recommenders.

Run folders are read only through :mod:`latentatlas.runs` (its kinds, artifact keys and file readers), so
a renamed key fails a test instead of silently emptying a section.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from latentatlas import runs
from latentatlas.errors import LatentAtlasError, printable
from latentatlas.progress import Progress, as_progress
from latentatlas.runs import Run

HISTOGRAM_TABLE = runs.RATING_HISTOGRAM_TABLE
RECOMMENDATIONS_TABLE = runs.RECOMMENDATIONS_TABLE
BEST_ITERATION = runs.BEST_ITERATION
HISTORY_KEYS = runs.HISTORY_KEYS

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class Figure:
    title: str
    caption: str
    png: bytes


@dataclass
class Section:
    """One section of both outputs: a run, or the comparison of several runs."""

    anchor: str
    title: str
    subtitle: str
    tables: list[tuple[str, list[str], list[list[str]]]]   # (name, header, rows)
    figures: list[Figure]
    explorers: list[Any] = field(default_factory=list)     # explorer.ExplorerData


def mpl_text(text: str) -> str:
    """``text`` for a matplotlib title or label: a pair of ``$`` would start math mode (and an unbalanced
    one raise), so they are escaped."""
    return str(text).replace("$", r"\$")


def fmt(value: Any) -> str:
    """A value as a short, readable table cell."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}" if abs(int(value)) >= 10_000 else str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v) or math.isinf(v):
            return str(v)
        if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-3):
            return f"{v:.3e}"
        return f"{v:.4g}"
    if isinstance(value, (list, tuple)):
        if len(value) > 8:
            return f"[{len(value)} values: {fmt(value[0])} … {fmt(value[-1])}]"
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, default=str)
    return str(value)


def _kv_rows(d: dict[str, Any]) -> list[list[str]]:
    return [[str(k), fmt(v)] for k, v in d.items()]


def _table_rows(rows: list[dict[str, Any]], limit: int = 60) -> tuple[list[str], list[list[str]]]:
    header: list[str] = []
    for row in rows:
        for key in row:
            if key not in header:
                header.append(key)
    body = [[fmt(row.get(h, "")) for h in header] for row in rows[:limit]]
    if len(rows) > limit:
        body.append([f"… {len(rows) - limit} more rows"] + [""] * (len(header) - 1))
    return header, body


def fig_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def read_png(path: Path) -> bytes:
    """A run's figure file, checked to be a whole PNG image (one line naming the file otherwise)."""
    from PIL import Image

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LatentAtlasError(f"{path}: cannot read figure ({exc.strerror or exc})") from None
    if not data.startswith(_PNG_MAGIC):
        raise LatentAtlasError(f"{path}: figure is not a PNG image")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError … for broken files
        raise LatentAtlasError(f"{path}: corrupt PNG figure ({printable(exc)})") from None
    return data


def _history(run: Run) -> dict[str, Any] | None:
    """The loss and RMSE histories of a ratings-train run (its metrics file), as plots.ratings expects."""
    m = run.metrics_file()
    k = HISTORY_KEYS
    if not isinstance(m.get(k["train_loss"]), list) and not isinstance(m.get(k["validation_loss"]), list):
        return None
    best = run.metrics.get(BEST_ITERATION, m.get(BEST_ITERATION))
    steps = m.get(k["steps"])
    return {"steps": steps if isinstance(steps, list) else [],
            "train_loss": m.get(k["train_loss"]) or [], "validation_loss": m.get(k["validation_loss"]) or [],
            "train_rmse": m.get(k["train_rmse"]) or [], "validation_rmse": m.get(k["validation_rmse"]) or [],
            "criterion": m.get(k["criterion"]) or "",
            "best_step": best if isinstance(best, (int, float)) and not isinstance(best, bool) else None}


def _has_figure_like(run: Run, word: str) -> bool:
    return any(word in (f.get("file", "") + " " + f.get("title", "")).lower() for f in run.figures)


def _histogram_counts(run: Run) -> dict[str, int] | None:
    """Rating → count from a prepare run's rating histogram table, if it has one."""
    rows = run.tables.get(HISTOGRAM_TABLE) or []
    try:
        hist = {str(r["rating"]): int(r["count"]) for r in rows}
    except (KeyError, TypeError, ValueError):
        return None
    return hist or None


def perplexity_sweep(embedding_path: Path) -> Figure | None:
    """Small multiples of every t-SNE perplexity an embedding file holds (None for fewer than two)."""
    from latentatlas.plots.style import style, subplots
    from latentatlas.report import explorer as ex

    data = ex._load_embedding(embedding_path)
    codes = data.get(runs.EMBEDDING_ARRAYS[0])
    if codes is None:
        return None
    coords = ex.embedding_coords(data, embedding_path, len(codes))
    sweep = [(key, c) for key, c in coords.items() if key.startswith("tsne_p")]
    if len(sweep) < 2:
        return None
    labels = np.asarray(data.get(runs.EMBEDDING_ARRAYS[1], np.zeros(len(codes)))).astype(np.int64).reshape(-1)
    if len(labels) != len(codes):
        labels = np.zeros(len(codes), dtype=np.int64)
    palette = np.array(ex.LABEL_COLOURS + ["#bbbbbb"])
    colours = palette[np.where(labels < 0, len(ex.LABEL_COLOURS), labels % len(ex.LABEL_COLOURS))]
    n = len(codes)
    cols = min(len(sweep), 3 if len(sweep) in (5, 6, 9) else 4)
    rows = math.ceil(len(sweep) / cols)
    # Point size and opacity shrink with n, so 70,000 points show their clusters' structure, not blobs.
    size = float(np.clip(40_000 / n, 0.15, 6))
    alpha = float(np.clip(0.9 * (3_000 / n) ** 0.3, 0.25, 0.9))
    fig, axes = subplots(rows, cols, figsize=(3.3 * cols, 3.3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    order = np.random.default_rng(0).permutation(n)   # no class is always painted over the others
    for ax, (key, c) in zip(axes.flat, sweep):
        ax.scatter(c[order, 0], c[order, 1], s=size, c=colours[order], alpha=alpha, linewidths=0, rasterized=True)
        ax.set_title(mpl_text(ex.projection_name(key)), fontsize=10)
        ax.set_aspect("equal", adjustable="datalim")
    names = [str(v) for v in data.get(runs.EMBEDDING_ARRAYS[2], [])]
    present = sorted(set(labels.tolist()))
    if 1 < len(present) <= 20:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], marker="o", linestyle="", color=palette[g % len(ex.LABEL_COLOURS)] if g >= 0
                          else palette[-1], label=mpl_text(names[g] if 0 <= g < len(names) else
                                                            ("unlabelled" if g < 0 else f"label {g}")))
                   for g in present]
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 5), frameon=False,
                   bbox_to_anchor=(0.5, 0.0))
    with style():
        fig.tight_layout(rect=(0, 0.06 if 1 < len(present) <= 20 else 0, 1, 1))
        png = fig_png(fig)
    perplexities = ", ".join(k.partition("_p")[2] for k, _ in sweep)
    return Figure("t-SNE perplexity sweep",
                  f"The same {n:,} codes embedded with perplexity {perplexities}, coloured by class: small "
                  "perplexities keep local detail and split clusters, large ones keep the global layout.",
                  fig_png(fig))


def run_section(run: Run, index: int, *, explorer_points: int | None = None, neighbours: int = 8, seed: int = 0,
                item_names: Mapping | None = None, item_colour: Mapping | None = None,
                item_colour_title: str = "", progress=None) -> Section:
    """The section of one run: metrics, configuration, its own tables and figures, and explorers."""
    from latentatlas.report import explorer as ex

    progress = as_progress(progress, "report")
    tables = []
    if run.metrics:
        tables.append(("Metrics", ["metric", "value"], _kv_rows(run.metrics)))
    if run.config:
        tables.append(("Configuration", ["option", "value"], _kv_rows(run.config)))
    for name, rows in run.tables.items():
        if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
            header, body = _table_rows(rows)
            tables.append((name.replace("_", " ").capitalize(), header, body))
    figures = [Figure(str(f.get("title") or f["file"]), str(f.get("caption") or ""), read_png(run.path / f["file"]))
               for f in run.figures]
    if run.kind == runs.RATINGS_PREPARE and not _has_figure_like(run, "hist"):
        hist = _histogram_counts(run)
        if hist is not None:
            from latentatlas.plots.ratings import rating_histogram

            figures.append(Figure("Rating histogram", "How often each rating occurs, all splits together.",
                                  fig_png(rating_histogram(hist))))
    explorers = []
    embedding = run.artifact(runs.EMBEDDING)
    if run.kind == runs.IMAGES_EMBED and embedding is not None:
        with progress.ticking("image explorer: nearest neighbours of the codes"):
            explorers.append(ex.image_explorer(embedding, max_points=explorer_points, k=neighbours, seed=seed))
        with progress.ticking("perplexity sweep figure"):
            sweep = perplexity_sweep(embedding)
        if sweep is not None:
            figures.append(sweep)
    model = run.artifact(runs.MODEL)
    if run.kind == runs.RATINGS_TRAIN and model is not None:
        with progress.ticking("item explorer: nearest neighbours of the items"):
            explorers.append(ex.item_explorer(model, max_points=explorer_points, k=neighbours, seed=seed,
                                              item_names=item_names, colour_by=item_colour,
                                              colour_title=item_colour_title))
    subtitle = f"{runs.KIND_TITLES.get(run.kind, run.kind)} · {run.path}" + (f" · {run.created}" if run.created else "")
    return Section(f"run-{index}", run.title, subtitle, tables, figures, explorers)


def comparison_section(all_runs: list[Run]) -> Section | None:
    """Side by side comparison of two or more trained recommenders (e.g. ALS and SGD)."""
    trained = [r for r in all_runs if r.kind == runs.RATINGS_TRAIN]
    if len(trained) < 2:
        return None
    names = [r.title for r in trained]
    keys: list[str] = []
    for r in trained:
        keys += [k for k in r.metrics if k not in keys]
    tables = [("Metrics side by side", ["metric"] + names,
               [[k] + [fmt(r.metrics[k]) if k in r.metrics else "" for r in trained] for k in keys])]
    recs = [r.tables.get(RECOMMENDATIONS_TABLE) or [] for r in trained]
    if all(recs):
        users = [u for u in dict.fromkeys(row.get("user") for row in recs[0])
                 if all(any(row.get("user") == u for row in rr) for rr in recs)][:3]
        rows = []
        for u in users:
            per_run = [sorted([row for row in rr if row.get("user") == u], key=lambda row: row.get("rank", 0))
                       for rr in recs]
            for rank in range(max(len(p) for p in per_run)):
                row = [fmt(u), str(rank + 1)]
                for p in per_run:
                    row += [fmt(p[rank].get("item")), fmt(p[rank].get("score"))] if rank < len(p) else ["", ""]
                rows.append(row)
        header = ["user", "rank"] + [h for n in names for h in (f"item ({n})", f"score ({n})")]
        tables.append(("Top recommendations for the same users", header, rows))
    figures = []
    with_history = [(r, h) for r, h in ((r, _history(r)) for r in trained) if h is not None]
    if len(with_history) >= 2:
        from latentatlas.plots.ratings import loss_curves

        titles = [mpl_text(r.title) for r, _ in with_history]
        histories = [h for _, h in with_history]
        figures.append(Figure("Training and validation loss, side by side",
                              "Penalised sum of squares per iteration for each model (log scale); the dotted "
                              "line marks the iteration whose factors were kept.",
                              fig_png(loss_curves(histories, "loss", titles=titles))))
        if all(h["train_rmse"] or h["validation_rmse"] for h in histories):
            figures.append(Figure("Training and validation RMSE, side by side",
                                  "Root mean squared error per iteration for each model.",
                                  fig_png(loss_curves(histories, "rmse", titles=titles))))
    return Section("comparison", "Comparison of the trained recommenders", ", ".join(names), tables, figures)


def build_sections(all_runs: list[Run], *, explorer_points: int | None = None, neighbours: int = 8,
                   seed: int = 0, progress: Progress | Callable[[str], None] | None = None,
                   **item_options) -> list[Section]:
    """Every run's section, then the comparisons (when two or more recommenders were trained; when a plain
    autoencoder and a VAE were)."""
    progress = as_progress(progress, "report")
    sections = []
    for i, run in enumerate(all_runs, 1):
        progress(f"section {i}/{len(all_runs)}: {run.title}")
        sections.append(run_section(run, i, explorer_points=explorer_points, neighbours=neighbours, seed=seed,
                                    progress=progress, **item_options))
    comp = comparison_section(all_runs)
    if comp is not None:
        sections.append(comp)
    from latentatlas.report.images import autoencoder_comparison

    autoencoders = autoencoder_comparison(all_runs)  # a plain autoencoder and a VAE, side by side
    if autoencoders is not None:
        sections.append(autoencoders)
    return sections
