"""The report's comparison of trained autoencoders: the plain one and the VAE side by side.

When a report is given two or more ``images-train`` runs, at least one plain autoencoder and one VAE among
them, :func:`autoencoder_comparison` adds a section with their test scores in one table (reconstruction MSE,
PSNR, k-NN label accuracy of the test codes, the VAE's KL) and one figure (the same scores as bars, and the
validation MSE per epoch). It reads only what the runs wrote (``run.json`` and ``metrics.json``, through
:mod:`latentatlas.runs`). ``latentatlas images compare`` trains both on the same data and builds such a report.
"""

from __future__ import annotations

import math
from typing import Any

from latentatlas import runs
from latentatlas.runs import Run

#: Colours of the compared runs, in order (the plain autoencoders' and the VAEs' alternate as trained).
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def model_of(run: Run) -> str:
    """``"vae"`` or ``"ae"``: what an images-train run trained (runs from before the VAE are plain)."""
    return "vae" if run.config.get("model") == "vae" else "ae"


def run_label(run: Run) -> str:
    """A short name for a trained run: ``AE`` or ``VAE β=0.5``, with its folder's name."""
    beta = _number(run.config.get("beta"))
    name = "VAE" + (f" β={beta:g}" if beta is not None else "") if model_of(run) == "vae" else "AE"
    return f"{name} ({run.path.name})"


def comparison_rows(trained: list[Run]) -> tuple[list[str], list[list[Any]]]:
    """The comparison table: a header and one row per run (numbers as numbers, missing values None)."""
    header = ["model", "code numbers", "test MSE", "PSNR (dB)", "k-NN accuracy", "test KL (nats)", "best epoch",
              "images"]
    rows = []
    for run in trained:
        m = run.metrics
        code = str(run.config.get("code_shape") or "")
        try:
            size = math.prod(int(v) for v in code.split("×")) if code else None
        except ValueError:
            size = None
        k = m.get("test_knn_k")
        rows.append([run_label(run), size, _number(m.get("test_mse")), _number(m.get("test_psnr_db")),
                     _number(m.get("test_knn_accuracy")), _number(m.get("test_kl")), m.get("best_epoch"),
                     f"{run.config.get('image_size', '')} × {run.config.get('image_channels', 1)}"
                     + (f"; {k}-NN" if k else "")])
    return header, rows


def comparison_figure(trained: list[Run]):
    """Bars of test MSE, PSNR and k-NN accuracy per run, and each run's validation MSE per epoch."""
    from latentatlas.plots.style import subplots
    from latentatlas.report.sections import mpl_text

    labels = [mpl_text(run_label(r)) for r in trained]
    colours = [COLOURS[i % len(COLOURS)] for i in range(len(trained))]
    panels = (("test_mse", "test MSE (lower is better)"), ("test_psnr_db", "PSNR, dB (higher is better)"),
              ("test_knn_accuracy", "k-NN accuracy of the codes"))
    fig, axes = subplots(1, 4, figsize=(15, 3.6))
    for ax, (key, title) in zip(axes, panels):
        values = [_number(r.metrics.get(key)) for r in trained]
        ax.set_title(title, fontsize=10)
        if all(v is None for v in values):
            ax.text(0.5, 0.5, "not measured\n(no labels)" if key == "test_knn_accuracy" else "not measured",
                    ha="center", va="center", transform=ax.transAxes, color="#777777")
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        xs = range(len(trained))
        ax.bar(xs, [v if v is not None else 0 for v in values], color=colours)
        for x, v in zip(xs, values):
            if v is not None:
                ax.annotate(f"{v:.4g}", (x, v), ha="center", va="bottom", fontsize=8, xytext=(0, 2),
                            textcoords="offset points")
        ax.set_xticks(list(xs))
        ax.set_xticklabels([mpl_text(run_label(r).partition(" (")[0]) for r in trained], fontsize=8,
                           rotation=0 if len(trained) <= 3 else 30)
        top = max(v for v in values if v is not None)
        ax.set_ylim(0, top * 1.18 if top > 0 else 1)
    ax = axes[3]
    for run, label, colour in zip(trained, labels, colours):
        curve = run.metrics_file().get("validation_mse")
        if isinstance(curve, list) and curve:
            ax.plot(range(1, len(curve) + 1), curve, marker="o", markersize=3, color=colour, label=label)
    ax.set_title("validation MSE per epoch", fontsize=10)
    ax.set_xlabel("epoch")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=7, loc="upper right")
    fig.subplots_adjust(wspace=0.3)
    return fig


def autoencoder_comparison(all_runs: list[Run]):
    """The section comparing the trained autoencoders, or None unless a plain one and a VAE were given."""
    from latentatlas.report.sections import Figure, Section, fig_png, fmt
    from latentatlas.plots.style import style

    trained = [r for r in all_runs if r.kind == runs.IMAGES_TRAIN]
    if len({model_of(r) for r in trained}) < 2:
        return None
    header, rows = comparison_rows(trained)
    table = [[fmt(v) if v is not None else "" for v in row] for row in rows]
    scored = [(r, _number(r.metrics.get("test_mse"))) for r in trained]
    scored = [(r, v) for r, v in scored if v is not None]
    notes = []
    if scored:
        best = min(scored, key=lambda rv: rv[1])[0]
        notes.append(f"lowest test MSE: {run_label(best)}")
    knn = [(r, _number(r.metrics.get("test_knn_accuracy"))) for r in trained]
    knn = [(r, v) for r, v in knn if v is not None]
    if knn:
        notes.append(f"best k-NN accuracy: {run_label(max(knn, key=lambda rv: rv[1])[0])}")
    with style():
        png = fig_png(comparison_figure(trained))
    figure = Figure("Plain autoencoder and VAE side by side",
                    "Scores on each run's untouched test images: reconstruction MSE per pixel (pixels in [0, 1]), "
                    "PSNR, and the leave-one-out k-NN label accuracy of the test codes (a VAE's are its posterior "
                    "means); right: the validation MSE after each epoch. A VAE trades reconstruction for a "
                    "regular latent space it can sample from." + (" " + "; ".join(notes) + "." if notes else ""),
                    png)
    names = ", ".join(run_label(r) for r in trained)
    return Section("autoencoders", "Comparison of the trained autoencoders", names,
                   [("Test scores side by side", header, table)], [figure])
