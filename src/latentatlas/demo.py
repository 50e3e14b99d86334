"""``latentatlas demo``: the whole story, step by step, through the library's own calls.

Each step calls the public library (``prepare_ratings``, ``ratings.workflow.train``, ``images.workflow``,
``build_report``) and logs the command a user would type for the same step, so every run folder it leaves
behind can be inspected, re-run from the shell or reported on by hand.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import os

from latentatlas.errors import LatentAtlasError
from latentatlas.progress import Progress


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
    explorer_points: int | None   # cap on the points each explorer draws (None: every one)


SIZES = {
    # Recommenders with the commands' defaults (k, λ, steps, early stopping): they take seconds.
    # Three epochs over all 60,000 images: most of the attainable quality for a fraction of the time.
    "full": DemoSize(ratings=100_000, k=None, als_steps=None, sgd_steps=None, images=None, epochs=3,
                     embed_images=5000, methods="pca,tsne,umap", pairs="0:1,2:3,4:5,6:7", explorer_points=None),
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
    """The demo's steps in order: (what it does, the equivalent command line)."""
    d = {name: str(out / name) for name in ("ratings", "als", "sgd", "autoencoder", "embedding", "interpolation")}
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
         ["images", "embed", "--checkpoint", d["autoencoder"], "--limit", str(size.embed_images), "--method",
          size.methods, "--count", str(min(size.embed_images, 500)), "--seed", s, "--out", d["embedding"]]),
        ("interpolate between pairs of test images",
         ["images", "interpolate", "--checkpoint", d["autoencoder"], "--pairs", size.pairs, "--out",
          d["interpolation"]]),
    ]


def _calls(out: Path, size: DemoSize, seed: int, log) -> list[Callable[[], None]]:
    """The library calls behind :func:`demo_steps`, one per step."""
    from latentatlas.images import workflow as images
    from latentatlas.ratings import workflow as ratings
    from latentatlas.ratings.model import LatentFactorModel
    from latentatlas.ratings.pipeline import prepare_ratings

    def prepare():
        prepare_ratings(builtin_size=size.ratings, seed=seed, progress=log).write(out / "ratings")

    def train(solver: str, steps: int | None):
        def call():
            params = {k: v for k, v in dict(k=size.k, max_steps=steps).items() if v is not None}
            model = LatentFactorModel(solver=solver, seed=seed, **params)
            result = ratings.train(ratings.load_parts(out / "ratings"), model, out=out / solver, progress=log,
                                   seed=seed)
            m = result.metrics
            log(f"  {solver.upper()}: test RMSE {m['test_rmse']:.4f}, MAE {m['test_mae']:.4f}")
        return call

    def autoencoder():
        images.train_run(out / "autoencoder", limit=size.images, epochs=size.epochs, seed=seed, progress=log)

    def embedding():
        images.embed_run(out / "embedding", checkpoint=out / "autoencoder", limit=size.embed_images,
                         methods=size.methods, count=min(size.embed_images, 500), seed=seed, progress=log)

    def interpolation():
        images.interpolate_run(out / "interpolation", out / "autoencoder", pairs=size.pairs, progress=log)

    return [prepare, train("als", size.als_steps), train("sgd", size.sgd_steps), autoencoder, embedding,
            interpolation]


def run_demo(out: str | os.PathLike = "latentatlas-demo", size: str = "full", *, quiet: bool = False,
             seed: int = 0, progress=None) -> DemoResult:
    """Run every demo step, then the report; raises :class:`LatentAtlasError` naming a failed step.

    Examples
    --------
    >>> from latentatlas.demo import run_demo
    >>> result = run_demo("latentatlas-demo", size="quick")     # doctest: +SKIP
    >>> result.html                                              # doctest: +SKIP
    PosixPath('latentatlas-demo/report/report.html')
    """
    from latentatlas.report import build_report

    if size not in SIZES:
        raise LatentAtlasError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise LatentAtlasError(f"--out {out} exists and is not a directory")
    sizes = SIZES[size]
    log = Progress("demo", quiet, progress)
    steps = demo_steps(out, sizes, seed)
    calls = _calls(out, sizes, seed, log)
    total = len(steps) + 1
    log(f"{size} demo into {out}/ ({total} steps)")
    seconds: dict[str, float] = {}
    for n, ((what, argv), call) in enumerate(zip(steps, calls), 1):
        log(f"step {n}/{total}: {what}")
        log(f"  (the same from the shell: {shlex.join(['latentatlas', *argv])})")
        t0 = time.perf_counter()
        try:
            call()
        except LatentAtlasError as exc:
            raise LatentAtlasError(f"demo step {n} ({what}) failed: {exc}") from None
        seconds[what] = time.perf_counter() - t0
        log(f"  done in {seconds[what]:.1f} s")
    report_dir = out / "report"
    run_dirs = [argv[argv.index("--out") + 1] for _, argv in steps]
    log(f"step {total}/{total}: write the report")
    t0 = time.perf_counter()
    result = build_report(run_dirs, report_dir, title=f"latentatlas demo ({size})",
                          explorer_points=sizes.explorer_points, seed=seed, progress=log)
    seconds["report"] = time.perf_counter() - t0
    log(f"  done in {seconds['report']:.1f} s")
    log(f"finished in {log.elapsed:.0f} s")
    return DemoResult(out, result.html, result.pdf, seconds)
