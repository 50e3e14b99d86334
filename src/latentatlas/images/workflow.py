"""Whole image runs as library calls: train, encode, embed, interpolate — each writes what its command writes.

``latentatlas images train|encode|embed|interpolate`` and the demo call these functions; every run folder is
written through :mod:`latentatlas.runs` (``run.json`` last). Embedding and interpolation runs replace their
folder as a whole (:func:`latentatlas.runs.staged_run`). A training run writes its checkpoints straight
into its folder after every epoch, because they must outlive a crash to be resumed; its ``run.json`` is
removed when training starts and written again when it ends, so the folder never describes checkpoints it
does not hold.

Example
-------
>>> from latentatlas.images import workflow
>>> trained = workflow.train_run("runs/ae", epochs=3)                              # doctest: +SKIP
>>> workflow.embed_run("runs/emb", checkpoint=trained.out, methods="pca,tsne")     # doctest: +SKIP
>>> workflow.interpolate_run("runs/interp", trained.out, pairs="0:1,2:3", steps=10)  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from latentatlas import runs
from latentatlas.errors import LatentAtlasError, printable
from latentatlas.images.io import ImageSet, read_images
from latentatlas.progress import Progress, ProgressCallback, as_progress

PathLike = str | os.PathLike
#: Figures of a training run.
LOSS_EPOCHS, LOSS_BATCHES = "loss_epochs.png", "loss_batches.png"
RECONSTRUCTIONS, SAMPLES, TRAVERSAL = "reconstructions.png", "samples.png", "traversal.png"
#: Most pairs one interpolation run takes (each is a row of its figure).
MAX_PAIRS = 100
#: Most frames drawn per row of the interpolation figure (``frames.npz`` keeps all of them).
MAX_DRAWN_STEPS = 16


def default_out(kind: str = runs.IMAGES_TRAIN, root: PathLike = "runs") -> Path:
    """``runs/<kind>-<UTC time>``: where a run goes when no folder is given."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{kind}-{stamp}"


def _check_limit(limit) -> int | None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise LatentAtlasError(f"limit={limit!r}: must be a positive integer")
    return limit


def _named_images(data: PathLike | None = None, data_dir: PathLike | None = None, split: str | None = "test",
                  limit: int | None = None) -> ImageSet:
    """:func:`read_images` of what a command's options name: ``data`` (any file or folder; ``split`` counts
    only for an IDX folder) or else the Fashion-MNIST ``split`` of ``data_dir`` (default: the installed
    package)."""
    if data is not None and data_dir is not None:
        raise LatentAtlasError("give either data (a file or folder of images) or data_dir (a Fashion-MNIST/"
                               "MNIST folder), not both")
    _check_limit(limit)
    if data is not None:
        return read_images(data, limit=limit)
    return read_images(data_dir, split or "test", limit=limit)


def fit_to_model(images: ImageSet, estimator, log=None) -> ImageSet:
    """``images`` with the channels and size the fitted ``estimator`` takes: grey ↔ colour converted,
    other sizes resized and centre-cropped (see :func:`latentatlas.images.io.resize_images`)."""
    out = images
    if out.channels != estimator.n_channels_:
        out = out.with_channels(estimator.n_channels_)
    if out.shape != tuple(estimator.image_shape_):
        out = out.resized(tuple(estimator.image_shape_))
    if out is not images and log is not None:
        log(f"images of {images.shape[0]}×{images.shape[1]} with {images.channels} channel(s) made "
            f"{out.shape[0]}×{out.shape[1]} with {out.channels}, as the model takes")
    return out


def resolve_checkpoint(checkpoint: PathLike | None) -> Path:
    """A checkpoint file, or the best checkpoint named by a training run folder's ``run.json``."""
    if checkpoint is None:
        raise LatentAtlasError("checkpoint is required (a .pt file or run folder written by `images train`)")
    path = Path(checkpoint)
    if path.is_dir():
        run = runs.load_run(path)
        found = run.artifact(runs.CHECKPOINT)
        if run.kind != runs.IMAGES_TRAIN or found is None:
            raise LatentAtlasError(f"checkpoint {path}: not an images-train run folder (its kind is {run.kind!r})")
        return found
    if not path.is_file():
        raise LatentAtlasError(f"checkpoint {path}: no such file")
    return path


def _load_estimator(checkpoint: PathLike | None):
    from latentatlas.images.autoencoder import ConvAutoencoder

    path = resolve_checkpoint(checkpoint)
    return path, ConvAutoencoder.from_checkpoint(path)


# --- train -------------------------------------------------------------------------------------------------
@dataclass
class TrainRun:
    """What :func:`train_run` did: the run folder, the fitted estimator (None when no epoch was completed),
    the loss history, the run as written (None when nothing was), and ``data`` (source and sizes)."""

    out: Path
    estimator: Any
    history: Any
    run: runs.Run | None
    data: dict[str, Any] = field(default_factory=dict)
    test: dict[str, float] = field(default_factory=dict)

    @property
    def interrupted(self) -> bool:
        return bool(self.history.interrupted)


def train_data(data: PathLike | None = None, data_dir: PathLike | None = None, test_data: PathLike | None = None,
               test_fraction: float = 0.1, limit: int | None = None, seed: int = 0, *,
               validation_fraction: float = 0.1, image_size=None, grayscale: bool = False, cache=None
               ) -> tuple[ImageSet, ImageSet, ImageSet, str]:
    """(train, validation, test, source) for a training run.

    The test images are never seen in training: Fashion-MNIST's t10k split from ``data_dir`` (default: the
    installed package), or ``test_data``, or a seeded ``test_fraction`` of ``data``. The validation images,
    which pick the kept epoch, are a seeded ``validation_fraction`` of the rest. Then the first ``limit``
    images of each part. ``image_size``, ``grayscale`` and ``cache`` (for ``data``) as in
    :func:`read_images`; test images are given the training images' channels.
    """
    from latentatlas.images.autoencoder import split_holdout

    if data_dir is not None and data is not None:
        raise LatentAtlasError("give either data_dir (a Fashion-MNIST/MNIST folder) or data (a file or folder), "
                               "not both")
    _check_limit(limit)
    opts = {"image_size": image_size, "grayscale": grayscale}
    if data is None:
        if test_data is not None:
            raise LatentAtlasError("test_data needs data (with data_dir the folder's t10k files are the test set)")
        train, test = read_images(data_dir, "train", **opts), read_images(data_dir, "test", **opts)
        source = str(Path(train.source).parent)
    else:
        train = read_images(data, cache=cache, **opts)
        source = str(data)
        if test_data is not None:
            test = read_images(test_data, **opts)
        else:
            train, test = split_holdout(train, test_fraction, seed, "test_fraction")
    train, validation = split_holdout(train, validation_fraction, seed + 1)
    test = test.with_channels(train.channels) if test.channels != train.channels else test
    if test.shape != train.shape:
        test = test.resized(train.shape)
    return train.head(limit), validation.head(limit), test.head(limit), source


def train_run(out: PathLike | None = None, *, data: PathLike | None = None, data_dir: PathLike | None = None,
              test_data: PathLike | None = None, test_fraction: float = 0.1, limit: int | None = None,
              image_size=None, grayscale: bool = False, cache: PathLike | None = None,
              preset: str = "fast", resume: PathLike | None = None, metrics_path: PathLike | None = None,
              progress: Progress | ProgressCallback | None = None, estimator=None, **params: Any) -> TrainRun:
    """Train a :class:`~latentatlas.images.autoencoder.ConvAutoencoder` (plain or ``model="vae"``) and write
    an ``images-train`` run.

    Parameters
    ----------
    out : path, optional
        The run folder (``best.pt``, ``last.pt``, ``metrics.json``, figures, ``run.json``). Default: the
        folder of ``resume``, else a new ``runs/images-train-<UTC time>``. A folder that is not one of ours
        (not empty, no run.json) is refused.
    data, data_dir, test_data, test_fraction, limit, image_size, grayscale, cache
        The images (see :func:`train_data`); ``validation_fraction`` (a parameter) sizes the validation part.
    preset : {"fast", "reference"}
        Named training settings; ``params`` override them.
    resume : path, optional
        A checkpoint or run folder of an interrupted run: parameters not given come from it, given ones must
        agree with it, and training continues where it stopped.
    metrics_path : path, optional
        Also write the metrics JSON there.
    progress : Progress or callable, optional
        Progress lines (default: the ``latentatlas`` logger).
    estimator : ConvAutoencoder, optional
        The estimator to train, built by the caller (``images train`` builds it from its options, with
        :meth:`~ConvAutoencoder.from_preset` or, on resume, :meth:`~ConvAutoencoder.from_checkpoint`); a copy
        is fitted. Then neither ``preset`` nor ``params`` may be given.
    **params
        Any :class:`ConvAutoencoder` parameter (``epochs=3``, ``model="vae"``, ``beta``, ``batch_size``,
        ``lr``, ``seed``, ``num_threads``, ``device``, ``validation_fraction``, …); None values are ignored.

    Returns
    -------
    TrainRun
        ``interrupted`` when Ctrl-C stopped it; the checkpoints of the completed epochs are kept and
        ``resume=out`` continues. ``test`` holds the scores on the untouched test images (``mse``, ``psnr_db``,
        and a VAE's ``kl``).

    Example
    -------
    >>> result = train_run("runs/ae", epochs=3, limit=10_000)                     # doctest: +SKIP
    >>> result.estimator.transform(images)                                          # doctest: +SKIP
    """
    from latentatlas.fsutil import save_figure, write_json
    from latentatlas.images.autoencoder import ConvAutoencoder
    from latentatlas.images.training import TrainingInterrupted, evaluate, resolve_resume

    log = as_progress(progress, "images train")
    names = set(ConvAutoencoder._get_param_names()) - {"progress"}
    unknown = sorted(set(params) - names)
    if unknown:
        raise LatentAtlasError(f"unknown autoencoder parameter {unknown[0]!r}; expected one of {', '.join(sorted(names))}")
    given = {k: v for k, v in params.items() if v is not None}
    checkpoint = None if resume is None else resolve_resume(resume)
    if estimator is not None:
        if given or preset != "fast":
            raise LatentAtlasError("give either an estimator or its parameters (and preset), not both")
        if not isinstance(estimator, ConvAutoencoder):
            raise LatentAtlasError(f"estimator: expected a ConvAutoencoder, got {type(estimator).__name__}")
        from sklearn.base import clone

        estimator = clone(estimator)
    elif checkpoint is not None:
        estimator = ConvAutoencoder.from_checkpoint(checkpoint, **given)  # its parameters, then the given ones
    else:
        estimator = ConvAutoencoder.from_preset(preset, **given)
    if checkpoint is not None:
        out = Path(out) if out is not None else checkpoint.parent
    else:
        if out is None:
            out = default_out(runs.IMAGES_TRAIN)
            log(f"no output folder given: writing to {out}")
        out = Path(out)
    estimator.check_params()  # every parameter checked before any data is read
    from latentatlas.images.io import check_image_size
    from latentatlas.images.network import MIN_SIDE

    size = check_image_size(image_size)
    if size is not None and min(size) < MIN_SIDE:
        raise LatentAtlasError(f"image_size={image_size!r}: the autoencoder needs sides of at least {MIN_SIDE} pixels")
    estimator.set_params(progress=log)
    train, validation, test, source = train_data(
        data, data_dir, test_data, test_fraction, limit, int(estimator.seed),
        validation_fraction=estimator.validation_fraction, image_size=image_size, grayscale=grayscale, cache=cache)
    if out.exists() and not out.is_dir():
        raise LatentAtlasError(f"output folder {out} exists and is not a folder")
    runs.check_ours(out)  # checkpoints are written straight into it: never into a folder of the user's
    try:
        out.mkdir(parents=True, exist_ok=True)
        runs.mark_ours(out)
    except OSError as exc:
        raise LatentAtlasError(f"cannot create output folder {out}: {exc.strerror or exc}") from None
    if (out / runs.RUN_FILE).exists():
        # Training is about to write checkpoints here: until it finishes and writes its own, no run.json may
        # describe them (a kill would leave an old one beside newer checkpoints).
        (out / runs.RUN_FILE).unlink()
    try:
        estimator.fit(train, validation, out_dir=out, resume=checkpoint)
        history = estimator.history_
    except TrainingInterrupted as exc:
        return TrainRun(out=out, estimator=None, history=exc.history, run=None)
    finally:
        estimator.set_params(progress=progress)

    config = estimator
    vae = config.model == "vae"
    with estimator._threads():
        scores = evaluate(estimator.model_, test.images, int(estimator.eval_batch_size), beta=float(estimator.beta))
    test_scores = {"mse": scores["mse"], "psnr_db": _psnr(scores["mse"])}
    if vae:
        test_scores["kl"] = scores["kl"]
    test_scores.update(_test_knn(estimator, test))
    completed = history.epochs_completed
    full = {"model": config.model, "train_mse": history.train_loss, "validation_mse": history.validation_loss,
            "test_mse": test_scores["mse"], "test_psnr_db": test_scores["psnr_db"],
            "seconds_per_epoch": history.seconds_per_epoch, "lr": history.lr,
            "batch_loss": history.batch_loss, "batches_per_epoch": history.batches_per_epoch,
            "best_epoch": history.best_epoch, "best_validation_mse": history.best_validation_loss,
            "epochs_completed": completed, "interrupted": history.interrupted, "device": history.device,
            "threads": history.threads, "n_train": len(train), "n_validation": len(validation),
            "n_test": len(test), "image_shape": list(train.shape), "image_channels": train.channels}
    if vae:
        full.update(beta=float(config.beta), train_kl=history.train_kl, validation_kl=history.validation_kl,
                    validation_objective=history.validation_objective, test_kl=test_scores["kl"])
    if "knn_accuracy" in test_scores:
        full.update(test_knn_accuracy=test_scores["knn_accuracy"], test_knn_k=test_scores["knn_k"])
    write_json(out / runs.FILES[runs.METRICS], full)
    if metrics_path is not None:
        write_json(metrics_path, full)
    figures = _training_figures(out, estimator, history, config, train, validation, test, save_figure)
    scalars = {"test_mse": test_scores["mse"], "test_psnr_db": test_scores["psnr_db"],
               "best_validation_mse": history.best_validation_loss, "best_epoch": history.best_epoch,
               "epochs_completed": completed,
               "mean_seconds_per_epoch": sum(history.seconds_per_epoch) / completed,
               "n_train": len(train), "n_validation": len(validation), "n_test": len(test)}
    if vae:
        scalars["test_kl"] = test_scores["kl"]
    if "knn_accuracy" in test_scores:
        scalars.update(test_knn_accuracy=test_scores["knn_accuracy"], test_knn_k=test_scores["knn_k"])
    code = "×".join(str(v) for v in estimator.code_shape_)
    cfg = {**estimator.settings(), "channels": ",".join(map(str, config.channels)), "data": source, "limit": limit,
           "image_size": "×".join(map(str, train.shape)), "image_channels": train.channels,
           "validation_fraction": estimator.validation_fraction,
           "resume": None if checkpoint is None else str(checkpoint), "code_shape": code}
    if not vae:
        cfg.pop("beta")
    kind = f"Variational autoencoder (β = {config.beta:g}, " if vae else "Convolutional autoencoder ("
    run = runs.write_run(
        out, runs.IMAGES_TRAIN, f"{kind}{code} code, {config.preset} preset)", config=cfg, metrics=scalars,
        figures=figures,
        artifacts={runs.CHECKPOINT: runs.FILES[runs.CHECKPOINT],
                   runs.LAST_CHECKPOINT: runs.FILES[runs.LAST_CHECKPOINT],
                   runs.METRICS: runs.FILES[runs.METRICS]})
    log(f"wrote {out}/ (best validation MSE {history.best_validation_loss:.5f} at epoch {history.best_epoch}; "
        f"test MSE {test_scores['mse']:.5f}, PSNR {test_scores['psnr_db']:.2f} dB)")
    return TrainRun(out=out, estimator=estimator, history=history, run=run,
                    data={"source": source, "n_train": len(train), "n_validation": len(validation),
                          "n_test": len(test)}, test=test_scores)


#: Most test codes whose k-NN label accuracy a training run reports (a seeded sample of queries beyond it).
KNN_QUERIES = 2000


def _test_knn(estimator, test: ImageSet) -> dict[str, Any]:
    """``knn_accuracy`` of the test images' codes (leave-one-out, up to 10 neighbours, at most
    :data:`KNN_QUERIES` seeded queries) and its ``knn_k``; empty without labels or with fewer than 3 images."""
    from latentatlas.images.latent import knn_accuracy

    if test.labels is None or len(test) < 3 or len(np.unique(test.labels)) < 2:
        return {}
    k = min(10, len(test) - 1)
    codes = estimator.transform(test)
    sample = KNN_QUERIES if len(test) > KNN_QUERIES else None
    return {"knn_accuracy": knn_accuracy(codes, test.labels, k=k, sample=sample, seed=int(estimator.seed)),
            "knn_k": k}


def _psnr(mse: float) -> float:
    """Peak signal-to-noise ratio in dB of a mean squared error of pixels in [0, 1]."""
    import math

    return float(10 * math.log10(1.0 / mse)) if mse > 0 else float("inf")


def _training_figures(out: Path, estimator, history, config, train: ImageSet, validation: ImageSet,
                      test: ImageSet, save_figure) -> list[dict]:
    """The figures of a training run, written into ``out``; returns their run.json entries."""
    from latentatlas.plots.images import image_grid, reconstruction_grid
    from latentatlas.images.training import lr_for
    from latentatlas.plots.training import batch_loss_figure, epoch_loss_figure

    vae = config.model == "vae"
    save_figure(batch_loss_figure(history.batch_loss, history.batches_per_epoch,
                                  ylabel="objective per pixel" if vae else "MSE per pixel"), out / LOSS_BATCHES)
    save_figure(epoch_loss_figure(history.train_loss, history.validation_loss, best_epoch=history.best_epoch,
                                  train_kl=history.train_kl or None, validation_kl=history.validation_kl or None),
                out / LOSS_EPOCHS)
    kl = " The lower panel shows the KL term, in nats per image." if vae else ""
    figures = [
        runs.figure(LOSS_EPOCHS, "Reconstruction error per epoch",
                    f"Mean squared error per pixel on {len(train)} training and {len(validation)} validation images "
                    f"after each epoch; the validation images pick the kept epoch ({history.best_epoch}, validation "
                    f"MSE {history.best_validation_loss:.4f}).{kl}"),
        runs.figure(LOSS_BATCHES, "Training loss per batch",
                    f"{'Cross-entropy + β·KL per pixel' if vae else 'MSE'} of every batch of "
                    f"{history.batch_size or config.batch_size} images ({config.schedule} learning-rate schedule, "
                    f"peak {lr_for(config, history.batch_size or config.batch_size or 96):.3g}), with a running "
                    f"mean.")]
    shown = test.head(10)
    recon = estimator.inverse_transform(estimator.transform(shown))
    save_figure(reconstruction_grid(shown.images, recon, title="Test images (top) and their reconstructions"),
                out / RECONSTRUCTIONS)
    figures.append(runs.figure(RECONSTRUCTIONS, "Reconstructions of test images",
                               f"The first {len(shown)} test images, never seen in training, above the pictures "
                               f"decoded from their codes{' (posterior means)' if vae else ''}."))
    steps = 9
    dims = estimator.traverse_dims(6)
    frames = estimator.traverse(test.images[0], dims=dims, steps=steps)
    titles = [f"{'z' if vae else 'code'}[{d}] {v:+.1f}{'' if vae else 'σ'}" if j in (0, steps - 1) else ""
              for d in dims for j, v in enumerate(np.linspace(-3, 3, steps))]
    save_figure(image_grid(frames.reshape(-1, *frames.shape[2:]), titles=titles, ncols=steps,
                           title="Traversal of single code numbers"), out / TRAVERSAL)
    how = ("from -3 to 3 (the prior's ±3 standard deviations)" if vae else
           "over its mean ± 3 standard deviations on the validation images")
    figures.append(runs.figure(TRAVERSAL, "Traversal of single code numbers",
                               f"The first test image's code with one number at a time swept {how}, the others "
                               f"kept; one row per number, the {len(dims)} that vary most over the validation "
                               f"images."))
    if vae:
        samples = estimator.sample(30, seed=int(config.seed))
        save_figure(image_grid(samples, ncols=10, title="New pictures sampled from the prior"), out / SAMPLES)
        figures.append(runs.figure(SAMPLES, "Samples", "Codes drawn from the prior N(0, I) (seeded), decoded."))
    return figures


# --- compare -----------------------------------------------------------------------------------------------
@dataclass
class CompareRun:
    """What :func:`compare_run` did: the plain autoencoder's and the VAE's :class:`TrainRun` and the report
    (a :class:`latentatlas.report.ReportResult`; None when either training was interrupted)."""

    ae: TrainRun
    vae: TrainRun
    report: Any


def compare_run(out: PathLike, *, beta: float = 1.0, title: str | None = None,
                progress: Progress | ProgressCallback | None = None, **options: Any) -> CompareRun:
    """Train a plain autoencoder and a VAE on the same images with the same parameters and splits, into
    ``out/ae`` and ``out/vae``, and build the report comparing them in ``out/report`` (``report.html`` and
    ``report.pdf``: each run's section, then the two side by side: test MSE, PSNR, k-NN accuracy of the test
    codes, validation curves).

    ``options`` are :func:`train_run`'s (the data options and any :class:`ConvAutoencoder` parameter but
    ``model``); ``beta`` is the VAE's.

    Example
    -------
    >>> compare_run("runs/compare", data="photos/", image_size=32, epochs=10, beta=0.1)   # doctest: +SKIP
    """
    from latentatlas.report import build_report

    if "model" in options or "resume" in options:
        raise LatentAtlasError("compare trains one plain autoencoder and one VAE: give no model or resume")
    out = Path(out)
    log = as_progress(progress, "images compare")
    if out.exists() and not out.is_dir():
        raise LatentAtlasError(f"output folder {out} exists and is not a folder")
    runs.check_ours(out)
    out.mkdir(parents=True, exist_ok=True)
    runs.mark_ours(out)
    trained = {}
    for model in ("ae", "vae"):
        log(f"training the {'plain autoencoder' if model == 'ae' else f'VAE (β = {beta:g})'} into {out / model}")
        trained[model] = train_run(out / model, model=model, beta=beta if model == "vae" else None,
                                   progress=progress, **options)
        if trained[model].interrupted:
            return CompareRun(ae=trained.get("ae", trained[model]), vae=trained[model], report=None)
    report = build_report([out / "ae", out / "vae"], out / "report",
                          title=title or "Plain autoencoder and VAE", progress=progress)
    log(f"wrote {report.html} and {report.pdf}")
    return CompareRun(ae=trained["ae"], vae=trained["vae"], report=report)


# --- encode ------------------------------------------------------------------------------------------------
@dataclass
class EncodeResult:
    """Where :func:`encode_run` wrote the codes, their labels (None without labels) and their description."""

    codes: Path
    labels: Path | None
    meta: Path
    n: int
    dims: int


def sidecars(codes_path: PathLike) -> tuple[Path, Path]:
    """Where :func:`encode_run` puts the labels and the description of ``codes.npy``:
    ``codes.labels.npy`` and ``codes.json``."""
    stem = Path(codes_path).with_suffix("")
    return stem.with_name(stem.name + ".labels.npy"), stem.with_suffix(".json")


def _save_npy(path: Path, array) -> None:
    from latentatlas.fsutil import atomic_path

    with atomic_path(path, suffix=".npy") as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)


def encode_run(checkpoint: PathLike, out: PathLike, *, data: PathLike | None = None,
               data_dir: PathLike | None = None, split: str = "test", limit: int | None = None,
               batch_size: int = 1024, threads: int | None = None,
               progress: Progress | ProgressCallback | None = None) -> EncodeResult:
    """Encode images to flattened latent codes: ``out`` (a ``.npy``, N×d float32), ``NAME.labels.npy`` beside
    it when the images have labels, and ``NAME.json`` describing both (read back by :func:`embed_run`).

    ``checkpoint`` is a ``.pt`` file or an ``images-train`` run folder; ``threads`` the CPU threads (default:
    :func:`latentatlas.images.training.default_threads`).

    Example
    -------
    >>> encode_run("runs/ae", "codes/test.npy", split="test")                      # doctest: +SKIP
    """
    from latentatlas.fsutil import write_json

    log = as_progress(progress, "encode")
    out = Path(out)
    if out.suffix != ".npy":
        raise LatentAtlasError(f"out={str(out)!r}: expected a file name ending in .npy")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise LatentAtlasError(f"batch_size={batch_size!r}: must be a positive integer")
    if threads is not None:
        _check_int("threads", threads, 1)
    path, estimator = _load_estimator(checkpoint)
    estimator.set_params(num_threads=threads)
    images = fit_to_model(_named_images(data, data_dir, split, limit), estimator, log)
    log(f"encoding {len(images)} images of {images.shape[0]}×{images.shape[1]} from {images.source}")
    codes = estimator.transform(images, batch_size=int(batch_size))
    if not np.isfinite(codes).all():
        raise LatentAtlasError(f"checkpoint {path}: the model produced NaN or infinite codes")
    labels_path, meta_path = sidecars(out)
    _save_npy(out, codes)
    if images.labels is not None:
        _save_npy(labels_path, images.labels)
    write_json(meta_path, {"codes": out.name, "labels": labels_path.name if images.labels is not None else None,
                           "n": int(codes.shape[0]), "dims": int(codes.shape[1]),
                           "code_shape": list(estimator.code_shape_), "checkpoint": str(path),
                           "source": images.source, "split": split if data is None else None,
                           "data_dir": None if data_dir is None else str(data_dir),
                           "data": None if data is None else str(data), "limit": limit,
                           "label_names": images.label_names, "created": runs.now()})
    log(f"wrote {out} ({codes.shape[0]}×{codes.shape[1]}) in {log.elapsed:.1f} s")
    return EncodeResult(codes=out, labels=labels_path if images.labels is not None else None, meta=meta_path,
                        n=int(codes.shape[0]), dims=int(codes.shape[1]))


# --- embed -------------------------------------------------------------------------------------------------
def parse_methods(methods: str | Iterable[str]) -> list[str]:
    """Methods from ``"pca,tsne"`` or ``["pca", "tsne,umap"]``, in order, without repeats."""
    from latentatlas.images.latent import METHODS

    parts = [methods] if isinstance(methods, str) else list(methods)
    chosen: list[str] = []
    for part in ",".join(parts).split(","):
        name = part.strip().lower()
        if not name:
            continue
        if name not in METHODS:
            raise LatentAtlasError(f"method: unknown method {printable(part.strip())!r}; choose from {', '.join(METHODS)}")
        if name not in chosen:
            chosen.append(name)
    if not chosen:
        raise LatentAtlasError(f"method: no method given; choose from {', '.join(METHODS)}")
    return chosen


def read_codes(codes_path: PathLike, labels_path: PathLike | None = None):
    """Codes written by :func:`encode_run`, their labels (from ``labels_path`` or the sidecar file; None
    without) and their description (``{}`` without)."""
    codes_path = Path(codes_path)
    if not codes_path.is_file():
        raise LatentAtlasError(f"codes {codes_path}: no such file")
    try:
        codes = np.load(codes_path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise LatentAtlasError(f"codes {codes_path}: cannot read as .npy ({printable(str(exc))[:200]})") from None
    if not isinstance(codes, np.ndarray) or codes.ndim != 2 or not np.issubdtype(codes.dtype, np.number):
        raise LatentAtlasError(f"codes {codes_path}: expected a 2-D numeric array (n × d), got "
                               f"{getattr(codes, 'dtype', '?')} {getattr(codes, 'shape', '')}")
    default_labels, meta_path = sidecars(codes_path)
    meta: dict = {}
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise LatentAtlasError(f"{meta_path}: cannot read as JSON ({printable(str(exc))[:200]})") from None
        if not isinstance(meta, dict):
            raise LatentAtlasError(f"{meta_path}: expected a JSON object")
    path = labels_path if labels_path is not None else (default_labels if default_labels.is_file() else None)
    labels = None
    if path is not None:
        if not Path(path).is_file():
            raise LatentAtlasError(f"labels {path}: no such file")
        try:
            labels = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise LatentAtlasError(f"labels {path}: cannot read as .npy ({printable(str(exc))[:200]})") from None
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise LatentAtlasError(f"labels {path}: expected a 1-D integer array, got {labels.dtype} {labels.shape}")
        if len(labels) != len(codes):
            raise LatentAtlasError(f"codes {codes_path} has {len(codes)} rows but labels {path} has {len(labels)}")
    return codes.astype(np.float32, copy=False), labels, meta


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise LatentAtlasError(f"{name}={value!r}: must be an integer of at least {low}")
    return int(value)


def embed_run(out: PathLike, *, checkpoint: PathLike | None = None, codes: PathLike | None = None,
              labels: PathLike | None = None, data: PathLike | None = None, data_dir: PathLike | None = None,
              split: str | None = None, methods: str | Sequence[str] = ("pca", "tsne", "umap"),
              perplexities: float | Sequence[float] = (30.0,), count: int = 1000, limit: int | None = None,
              seed: int = 0, k: int = 10, knn_sample: int = 10000, threads: int = 2,
              progress: Progress | ProgressCallback | None = None) -> runs.Run:
    """2-D embeddings of latent codes, written as an ``images-embed`` run (replaced as a whole).

    The codes come from ``checkpoint`` (a ``.pt`` or a training run folder; the images are encoded now) or
    from ``codes`` written by :func:`encode_run` (the images, needed for thumbnails, are found from its
    description unless ``data``/``data_dir``/``split`` say otherwise). For each method (and each t-SNE
    perplexity) the run holds a scatter coloured by label, a thumbnail scatter of ``count`` images, the
    k-NN label accuracy (``k`` neighbours, ``knn_sample`` queries) and the seconds it took; ``embedding.npz``
    holds ``codes``, ``labels``, ``label_names``, ``thumbnails`` and one ``coords_<method>`` per embedding.

    Example
    -------
    >>> embed_run("runs/emb", checkpoint="runs/ae", methods="pca,tsne", limit=5000)  # doctest: +SKIP
    """
    from latentatlas.fsutil import save_figure, save_npz
    from latentatlas.images.latent import embed, knn_accuracy, sample_indices
    from latentatlas.plots.images import label_scatter, thumbnail_scatter

    if (checkpoint is None) == (codes is None):
        raise LatentAtlasError("give exactly one of checkpoint (encode the images now) or codes (codes from "
                               "`images encode`)")
    if labels is not None and codes is None:
        raise LatentAtlasError("labels go with codes; with a checkpoint the labels come from the data")
    chosen = parse_methods(methods)
    values = [perplexities] if isinstance(perplexities, (int, float)) else list(perplexities)
    for p in values:
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not p > 0:
            raise LatentAtlasError(f"perplexity={p!r}: must be positive")
    perps = list(dict.fromkeys(float(p) for p in values)) or [30.0]
    count, seed = _check_int("count", count, 0), _check_int("seed", seed, 0)
    k, knn_sample = _check_int("k", k, 1), _check_int("knn_sample", knn_sample, 1)
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads == 0 or threads < -1:
        raise LatentAtlasError(f"threads={threads!r}: must be a positive integer (or -1 for all cores)")
    _check_limit(limit)
    log = as_progress(progress, "embed")

    if codes is not None:
        z, y, meta = read_codes(codes, labels)
        if data is None and data_dir is None:
            data = meta.get("data") or None
            data_dir = meta.get("data_dir") or None
        split = split or meta.get("split") or "test"
        images = _named_images(data, data_dir, split)
        if len(images) < len(z) or (meta.get("limit") is None and len(images) != len(z)):
            raise LatentAtlasError(
                f"codes {codes} has {len(z)} rows but the images ({images.source}, split {split}) number "
                f"{len(images)}; give the data/data_dir/split the codes were encoded from")
        images = images.head(len(z))
        if y is None:
            y = images.labels
        if limit is not None:
            z, y, images = z[:limit], (None if y is None else y[:limit]), images.head(limit)
        label_names = meta.get("label_names") or images.label_names
        ckpt_path = None
    else:
        ckpt_path, estimator = _load_estimator(checkpoint)
        split = split or "test"
        images = fit_to_model(_named_images(data, data_dir, split, limit), estimator, log)
        log(f"encoding {len(images)} images from {images.source}")
        z = estimator.transform(images)
        y = images.labels
        label_names = images.label_names
    n = len(z)
    if n < 4:
        raise LatentAtlasError(f"need at least 4 codes to embed, got {n}")
    if y is not None and len(y) != n:
        raise LatentAtlasError(f"{n} codes but {len(y)} labels")
    if y is not None and k >= n:
        raise LatentAtlasError(f"k={k} needs more than {k} points, got {n}")
    if not np.isfinite(z).all():
        raise LatentAtlasError("the codes contain NaN or infinity")
    if "tsne" in chosen and 3 * max(perps) >= n - 1:
        raise LatentAtlasError(f"perplexity={max(perps):g} is too large for {n} points "
                               f"(t-SNE needs 3·perplexity < n - 1, i.e. perplexity < {(n - 1) / 3:.4g})")

    metrics: dict = {"n_points": n, "code_dims": int(z.shape[1])}
    rows: list[dict] = []
    figures: list[dict] = []
    arrays: dict = {}
    sample = sample_indices(n, count, seed)
    knn_q = knn_sample if knn_sample < n else None
    if y is not None:
        acc = knn_accuracy(z, y, k=k, sample=knn_q, seed=seed)
        metrics["knn_accuracy_latent"] = acc
        rows.append({"method": "latent codes", "dims": int(z.shape[1]), "seconds": None, "knn_accuracy": acc})
        log(f"{k}-NN label accuracy of the {z.shape[1]}-dim codes: {acc:.3f}")

    pictures = images.channels_last()  # N×H×W grey or N×H×W×3 colour, as pictures are drawn and stored
    todo: list[tuple[str, float | None]] = []
    for m in chosen:
        todo += [("tsne", p) for p in perps] if m == "tsne" else [(m, None)]
    with runs.staged_run(out) as stage:
        for m, p in todo:
            key = m if p is None else f"tsne_p{p:g}"
            label = f"t-SNE (perplexity {p:g})" if m == "tsne" else {"pca": "PCA", "umap": "UMAP"}[m]
            kw = {"perplexity": p, "n_jobs": int(threads)} if m == "tsne" else {}
            step = Progress(log.label, log.quiet, log.callback)
            coords = embed(z, m, seed=seed, progress=step, **kw)
            secs = step.elapsed
            arrays[f"{runs.COORDS_PREFIX}{key}"] = coords
            if m == "tsne" and p == perps[0]:
                arrays[f"{runs.COORDS_PREFIX}tsne"] = coords
            metrics[f"seconds_{key}"] = round(secs, 3)
            row = {"method": label, "dims": 2, "seconds": round(secs, 3), "knn_accuracy": None}
            msg = f"{label}: {secs:.1f} s"
            if y is not None:
                acc = knn_accuracy(coords, y, k=k, sample=knn_q, seed=seed)
                metrics[f"knn_accuracy_{key}"] = acc
                if m == "tsne" and p == perps[0]:
                    metrics["knn_accuracy_tsne"] = acc
                row["knn_accuracy"] = acc
                msg += f", {k}-NN label accuracy {acc:.3f}"
            rows.append(row)
            log(msg)
            if y is not None:
                fig = label_scatter(coords, y, label_names, title=f"{label} of {n} latent codes")
                save_figure(fig, stage / f"{key}_labels.png")
                figures.append(runs.figure(
                    f"{key}_labels.png", f"{label}: codes coloured by class",
                    f"{n} codes; {k}-NN label accuracy in 2-D {row['knn_accuracy']:.3f} vs "
                    f"{metrics['knn_accuracy_latent']:.3f} in the latent space."))
            if len(sample):
                fig = thumbnail_scatter(coords[sample], pictures[sample], None if y is None else y[sample],
                                        label_names, title=f"{label}: {len(sample)} of {n} images at their 2-D position")
                save_figure(fig, stage / f"{key}_thumbnails.png", dpi=200)  # about one screen pixel per image pixel
                figures.append(runs.figure(
                    f"{key}_thumbnails.png", f"{label}: thumbnails",
                    f"A seeded random sample of {len(sample)} images drawn at their embedded positions."))

        names = np.asarray([str(s) for s in label_names] if label_names else [], dtype=str)
        save_npz(stage / runs.FILES[runs.EMBEDDING], **arrays,
                 labels=np.asarray(y if y is not None else np.full(n, -1), dtype=np.int64),
                 label_names=names, thumbnails=pictures, codes=z.astype(np.float32))
        config = {"checkpoint": None if ckpt_path is None else str(ckpt_path),
                  "codes": None if codes is None else str(codes), "source": images.source, "split": split,
                  "methods": ",".join(chosen), "perplexities": ",".join(f"{p:g}" for p in perps),
                  "count": count, "limit": limit, "seed": seed, "k": k, "knn_sample": knn_sample,
                  "threads": int(threads)}
        runs.write_run(stage, runs.IMAGES_EMBED, f"2-D embeddings of {n} latent codes", config=config,
                       metrics=metrics, figures=figures, artifacts={runs.EMBEDDING: runs.FILES[runs.EMBEDDING]},
                       tables={"embeddings": rows})
    log(f"wrote {out} in {log.elapsed:.1f} s")
    return runs.load_run(out)


# --- interpolate -------------------------------------------------------------------------------------------
def parse_pairs(pairs: str | Sequence[tuple[int, int]], n: int, source: str = "the images") -> list[tuple[int, int]]:
    """Index pairs from ``"0:1,5:9"`` or ``[(0, 1), (5, 9)]``, each index checked against ``n`` images; at
    most :data:`MAX_PAIRS` of them."""
    items: list[tuple[Any, Any, str]] = []
    if isinstance(pairs, str):
        parts = pairs.split(",")
        given = sum(1 for p in parts if p.strip())
        if given > MAX_PAIRS:
            raise LatentAtlasError(f"pairs: {given:,} pairs given; at most {MAX_PAIRS} (each is a row of the figure)")
        for part in parts:
            part = part.strip()
            if not part:
                continue
            bits = part.split(":")
            if len(bits) != 2:
                raise LatentAtlasError(f"pairs: {printable(part)!r} is not of the form I:J (e.g. 0:1,5:9)")
            try:
                items.append((int(bits[0]), int(bits[1]), part))
            except ValueError:
                raise LatentAtlasError(f"pairs: {printable(part)!r}: indices must be integers (e.g. 0:1,5:9)") from None
    else:
        try:
            count = len(pairs)
        except TypeError:
            raise LatentAtlasError(f"pairs: expected a string such as '0:1,5:9' or a list of index pairs, got "
                                   f"{type(pairs).__name__}") from None
        if count > MAX_PAIRS:
            raise LatentAtlasError(f"pairs: {count:,} pairs given; at most {MAX_PAIRS} (each is a row of the figure)")
        for pair in pairs:
            try:
                i, j = pair
            except (TypeError, ValueError):
                raise LatentAtlasError(f"pairs: {pair!r} is not a pair of indices") from None
            if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (i, j)):
                raise LatentAtlasError(f"pairs: {pair!r}: indices must be integers")
            items.append((int(i), int(j), f"{i}:{j}"))
    if not items:
        raise LatentAtlasError("pairs: no pair given (e.g. 0:1,5:9)")
    for i, j, part in items:
        for idx in (i, j):
            if not 0 <= idx < n:
                raise LatentAtlasError(f"pairs: index {idx} in {part!r} is out of range: {source} has {n} images "
                                       f"(0..{n - 1})")
    return [(i, j) for i, j, _ in items]


def interpolate_run(out: PathLike, checkpoint: PathLike, *, pairs: str | Sequence[tuple[int, int]] = "0:1",
                    steps: int = 10, data: PathLike | None = None, data_dir: PathLike | None = None,
                    split: str = "test", progress: Progress | ProgressCallback | None = None) -> runs.Run:
    """Decode ``steps`` equidistant points between the codes of each pair of images (indices into the
    images the data options name); written as an ``images-interpolate`` run (replaced as a whole) with
    ``interpolation.png`` (one row per pair; at most :data:`MAX_DRAWN_STEPS` evenly spaced frames of each,
    both ends included) and ``frames.npz`` (``frames`` (pairs, steps, H, W), or (pairs, steps, 3, H, W) for
    colour, float32 in [0, 1]; ``pairs``). ``steps`` is 2 to :data:`latentatlas.images.latent.MAX_STEPS`,
    ``pairs`` at most :data:`MAX_PAIRS`. Images of another size or channel count than the model's are
    converted first (:func:`fit_to_model`).

    Example
    -------
    >>> interpolate_run("runs/interp", "runs/ae", pairs="0:1,2:3", steps=10)    # doctest: +SKIP
    """
    from latentatlas.fsutil import save_figure, save_npz
    from latentatlas.images.latent import check_steps
    from latentatlas.plots.images import interpolation_grid

    steps = check_steps(steps)
    log = as_progress(progress, "interpolate")
    path, estimator = _load_estimator(checkpoint)
    images = _named_images(data, data_dir, split)
    chosen = parse_pairs(pairs, len(images), f"{images.source}" + ("" if data is not None else f" ({split})"))
    images = fit_to_model(images, estimator, log)
    drawn = np.unique(np.rint(np.linspace(0, steps - 1, min(steps, MAX_DRAWN_STEPS))).astype(int))

    def name(idx: int) -> str:
        if images.labels is not None and images.label_names and 0 <= images.labels[idx] < len(images.label_names):
            return f"#{idx} {images.label_names[images.labels[idx]]}"
        return f"#{idx}"

    rows, names, frames_all = [], [], []
    for i, j in chosen:
        frames = estimator.interpolate(images.images[i], images.images[j], steps)
        rows.append((images.images[i], images.images[j], frames[drawn]))
        frames_all.append(frames)
        names.append((name(i), name(j)))
        log(f"pair {i}:{j}: {steps} frames")
    with runs.staged_run(out) as stage:
        fig = interpolation_grid(rows, names=names, title=f"Interpolation in latent space ({steps} steps)",
                                 positions=drawn / (steps - 1))
        save_figure(fig, stage / "interpolation.png")
        save_npz(stage / runs.FILES[runs.FRAMES], frames=np.stack(frames_all).astype(np.float32),
                 pairs=np.asarray(chosen, dtype=np.int64))
        figures = [runs.figure("interpolation.png", "Interpolation between pairs of images",
                               "Each row: image A, the decoded points on the straight line from A's code to B's "
                               "(0% = reconstruction of A, 100% = reconstruction of B), image B."
                               + ("" if len(drawn) == steps else f" {len(drawn)} of the {steps} frames are drawn; "
                                  "frames.npz holds all."))]
        config = {"checkpoint": str(path), "pairs": ",".join(f"{i}:{j}" for i, j in chosen), "steps": steps,
                  "source": images.source, "split": split if data is None else None}
        runs.write_run(stage, runs.IMAGES_INTERPOLATE, f"Latent interpolation, {len(chosen)} pair(s)",
                       config=config, metrics={"n_pairs": len(chosen), "steps": steps}, figures=figures,
                       artifacts={runs.FRAMES: runs.FILES[runs.FRAMES]})
    log(f"wrote {out} in {log.elapsed:.1f} s")
    return runs.load_run(out)
