"""``latentatlas demo``: the whole story, step by step, through the same commands a user would type.

Every step is a ``latentatlas`` command run in this process (:func:`latentatlas.cli.run`), so the demo
exercises exactly the public command line, and each run directory it leaves behind can be inspected,
re-run or reported on by hand.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from latentatlas.errors import LatentAtlasError
from latentatlas.progress import Progress


CHECKPOINT = "{checkpoint}"


@dataclass(frozen=True)
class DemoSize:
    """How big each step of the demo is."""

    ratings: int             # built-in synthetic ratings
    k: int | None            # latent factors of both recommenders (None: the command's default)
    als_steps: int | None    # most iterations (None: the command's default, with early stopping)
    sgd_steps: int | None
    images: int | None       # training images (None: all 60,000)
    epochs: int
    embed_images: int        # test images embedded
    methods: str             # 2-D embeddings
    pairs: str               # interpolation pairs (test-set indices)
    explorer_points: int


SIZES = {
    # Recommenders with the commands' defaults (k, λ, steps, early stopping): they take seconds.
    # Three epochs over all 60,000 images: most of the attainable quality for a fraction of the time.
    "full": DemoSize(ratings=100_000, k=None, als_steps=None, sgd_steps=None, images=None, epochs=3,
                     embed_images=5000, methods="pca,tsne,umap", pairs="0:1,2:3,4:5,6:7", explorer_points=2000),
    "quick": DemoSize(ratings=100_000, k=None, als_steps=None, sgd_steps=None, images=10_000, epochs=1,
                      embed_images=1500, methods="pca,tsne", pairs="0:1,2:3,4:5", explorer_points=1500),
    # For the test suite: every step runs, on the smallest inputs that still mean something.
    # (t-SNE is left out: even on 200 points it costs seconds of fixed overhead.)
    "tiny": DemoSize(ratings=20_000, k=4, als_steps=3, sgd_steps=3, images=600, epochs=1, embed_images=200,
                     methods="pca", pairs="0:1", explorer_points=200),
}


@dataclass
class DemoResult:
    out: Path
    html: Path
    pdf: Path
    seconds: dict[str, float]


def _opt(flag: str, value) -> list[str]:
    return [] if value is None else [flag, str(value)]


def demo_steps(out: Path, size: DemoSize, seed: int = 0) -> list[tuple[str, list[str]]]:
    """The commands of the demo, in order: (what it does, argv)."""
    d = {name: str(out / name) for name in ("ratings", "als", "sgd", "autoencoder", "embedding", "interpolation")}
    checkpoint = CHECKPOINT  # known once the autoencoder is trained: its run.json names it
    s = str(seed)
    images = [] if size.images is None else ["--limit", str(size.images)]
    return [
        (f"prepare the built-in ratings ({size.ratings:,} synthetic ratings)",
         ["ratings", "prepare", "--builtin-size", str(size.ratings), "--seed", s, "--out", d["ratings"]]),
        ("train the ALS recommender",
         ["ratings", "train", d["ratings"], "--solver", "als", *_opt("--k", size.k),
          *_opt("--max-steps", size.als_steps), "--seed", s, "--out", d["als"]]),
        ("train the SGD recommender",
         ["ratings", "train", d["ratings"], "--solver", "sgd", *_opt("--k", size.k),
          *_opt("--max-steps", size.sgd_steps), "--seed", s, "--out", d["sgd"]]),
        (f"train the autoencoder on Fashion-MNIST ({'all' if size.images is None else f'{size.images:,}'} images, "
         f"{size.epochs} epoch{'s' if size.epochs > 1 else ''})",
         ["images", "train", "--epochs", str(size.epochs), *images, "--seed", s, "--out", d["autoencoder"]]),
        (f"embed the codes of {size.embed_images:,} test images ({size.methods})",
         ["images", "embed", "--checkpoint", checkpoint, "--limit", str(size.embed_images), "--method", size.methods,
          "--count", str(min(size.embed_images, 500)), "--seed", s, "--out", d["embedding"]]),
        ("interpolate between pairs of test images",
         ["images", "interpolate", "--checkpoint", checkpoint, "--pairs", size.pairs, "--out", d["interpolation"]]),
    ]


def run_demo(out: str | os.PathLike = "latentatlas-demo", size: str = "full", *, quiet: bool = False,
             seed: int = 0) -> DemoResult:
    """Run every demo step, then the report; raises :class:`LatentAtlasError` naming a failed step."""
    from latentatlas.cli import run

    if size not in SIZES:
        raise LatentAtlasError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise LatentAtlasError(f"--out {out} exists and is not a directory")
    sizes = SIZES[size]
    steps = demo_steps(out, sizes, seed)
    log = Progress("demo", quiet)
    log(f"{size} demo into {out}/ ({len(steps) + 1} steps)")
    seconds: dict[str, float] = {}
    run_dirs = []
    for n, (what, argv) in enumerate(steps, 1):
        log(f"step {n}/{len(steps) + 1}: {what}")
        argv = [_checkpoint(out) if a == CHECKPOINT else a for a in argv]
        log(f"  $ {shlex.join(['latentatlas', *argv])}")
        t0 = time.perf_counter()
        with _stdout_hidden(quiet):
            code = run(argv + (["--quiet"] if quiet else []))
        if code != 0:
            raise LatentAtlasError(f"demo step {n} ({what}) failed with status {code}; "
                                   f"command: {shlex.join(['latentatlas', *argv])}")
        seconds[what] = time.perf_counter() - t0
        log(f"  done in {seconds[what]:.1f} s")
        run_dirs.append(argv[argv.index("--out") + 1])
        if argv[:2] == ["ratings", "train"] and n == 3:
            _compare(out, log)
    report_dir = out / "report"
    argv = ["report", *run_dirs, "--out", str(report_dir), "--title", f"latentatlas demo ({size})",
            "--explorer-points", str(sizes.explorer_points), "--seed", str(seed)]
    log(f"step {len(steps) + 1}/{len(steps) + 1}: write the report")
    log(f"  $ {shlex.join(['latentatlas', *argv])}")
    t0 = time.perf_counter()
    with _stdout_hidden(True):  # the demo prints the report's paths itself
        code = run(argv + (["--quiet"] if quiet else []))
    if code != 0:
        raise LatentAtlasError(f"demo step {len(steps) + 1} (report) failed with status {code}")
    seconds["report"] = time.perf_counter() - t0
    log(f"  done in {seconds['report']:.1f} s")
    log(f"finished in {log.elapsed:.0f} s")
    return DemoResult(out, report_dir / "report.html", report_dir / "report.pdf", seconds)


def _stdout_hidden(hide: bool):
    """Swallow a step's normal output (its summaries) when quiet; errors still go to stderr."""
    return contextlib.redirect_stdout(io.StringIO()) if hide else contextlib.nullcontext()


def _checkpoint(out: Path) -> str:
    """The best checkpoint of the demo's autoencoder run, as its run.json names it."""
    run_dir = out / "autoencoder"
    try:
        name = json.loads((run_dir / "run.json").read_text())["artifacts"]["checkpoint"]
    except (OSError, ValueError, KeyError, TypeError):
        raise LatentAtlasError(f"{run_dir / 'run.json'}: no artifacts.checkpoint after `images train`") from None
    return str(run_dir / name)


def _compare(out: Path, log: Progress) -> None:
    """One line per recommender: its test errors and time, read back from the runs."""
    for name in ("als", "sgd"):
        try:
            metrics = json.loads((out / name / "run.json").read_text())["metrics"]
        except (OSError, ValueError, KeyError):
            continue
        parts = [f"{key} {metrics[key]:.4f}" for key in ("test_rmse", "test_mae") if isinstance(metrics.get(key), float)]
        log(f"  {name.upper()}: " + (", ".join(parts) or "no test metrics"))
