"""``latentatlas images train``: a thin wrapper over :func:`latentatlas.images.training.train_autoencoder`."""

from __future__ import annotations

import glob
import os
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer

from latentatlas.errors import LatentAtlasError

TCMALLOC_ENV = "LATENTATLAS_TCMALLOC"
_REEXEC_MARK = "_LATENTATLAS_TCMALLOC_REEXEC"
_LIB_DIRS = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"]


def find_tcmalloc() -> str | None:
    """Path of an installed tcmalloc (Debian: libgoogle-perftools4 or libtcmalloc-minimal4), or None."""
    for name in ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4"):
        for folder in _LIB_DIRS:
            hits = sorted(glob.glob(os.path.join(folder, name)))
            if hits:
                return hits[0]
    return None


def _started_as_cli() -> bool:
    """True when this process is the ``latentatlas`` program itself (not a test calling ``cli.run``)."""
    argv0 = Path(sys.argv[0])
    return argv0.name == "latentatlas" or argv0.parts[-2:] == ("latentatlas", "__main__.py")


def maybe_reexec_with_tcmalloc() -> None:
    """Restart this command with tcmalloc preloaded, when it is installed and not yet loaded.

    PyTorch on CPU allocates and frees large activation buffers every step; glibc malloc returns them to
    the kernel each time, so a step costs hundreds of thousands of page faults. tcmalloc keeps them, which
    halves the epoch time here with identical results. ``LATENTATLAS_TCMALLOC=0`` turns this off.
    """
    if os.environ.get(TCMALLOC_ENV, "1").strip().lower() in ("0", "no", "off", "false"):
        return
    if os.environ.get(_REEXEC_MARK) or "tcmalloc" in os.environ.get("LD_PRELOAD", "") or not _started_as_cli():
        return
    lib = find_tcmalloc()
    if lib is None:
        return
    env = dict(os.environ, **{_REEXEC_MARK: "1", "LD_PRELOAD": " ".join(filter(None, [lib, os.environ.get("LD_PRELOAD")]))})
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, [sys.executable, "-m", "latentatlas", *sys.argv[1:]], env)
    except OSError:
        return  # cannot restart: carry on with the default allocator


def _parse_channels(text: Optional[str]):
    if text is None:
        return None
    try:
        values = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise LatentAtlasError(f"--channels {text!r}: expected three comma-separated integers, e.g. 4,16,32") from None
    if len(values) != 3 or min(values) < 1:
        raise LatentAtlasError(f"--channels {text!r}: expected three positive integers, e.g. 4,16,32")
    return values


def _load_data(data_dir, data, test_data, test_fraction, limit, seed):
    import numpy as np

    from latentatlas.images import io

    if data_dir is not None and data is not None:
        raise LatentAtlasError("give either --data-dir (a Fashion-MNIST/MNIST folder) or --data (a file or folder), not both")
    if limit is not None and limit < 1:
        raise LatentAtlasError(f"--limit {limit}: must be a positive integer")
    if data is None:
        if test_data is not None:
            raise LatentAtlasError("--test-data needs --data (with --data-dir the folder's t10k files are the test set)")
        train, test = io.load_fashion_mnist(data_dir, "train"), io.load_fashion_mnist(data_dir, "test")
        source = str(Path(train.source).parent)
    else:
        train = io.load_images(data)
        source = str(data)
        if test_data is not None:
            test = io.load_images(test_data)
        else:
            if not 0 < test_fraction < 1:
                raise LatentAtlasError(f"--test-fraction {test_fraction}: must be between 0 and 1")
            n_test = int(round(len(train) * test_fraction))
            if n_test < 1 or n_test >= len(train):
                raise LatentAtlasError(
                    f"{data}: {len(train)} images are too few to hold out --test-fraction {test_fraction}; "
                    f"pass --test-data")
            order = np.random.default_rng(seed).permutation(len(train))
            train, test = train.take(np.sort(order[n_test:])), train.take(np.sort(order[:n_test]))
    return train.head(limit), test.head(limit), source


def train(
    data_dir: Optional[Path] = typer.Option(
        None, "--data-dir", help="Folder with Fashion-MNIST/MNIST IDX files (train-* and t10k-*, gzipped or not); "
                                 "default /usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist)."),
    data: Optional[Path] = typer.Option(
        None, "--data", help="Training images instead: .npz (images/x, labels/y), an IDX file, or a folder of "
                             "pictures (one sub-folder per class)."),
    test_data: Optional[Path] = typer.Option(None, "--test-data", help="Test images for --data (default: hold out "
                                                                      "--test-fraction of --data, seeded)."),
    test_fraction: float = typer.Option(0.1, help="Share of --data held out for testing when --test-data is absent."),
    out: Path = typer.Option(Path("runs/images-train"), "--out", "-o",
                             help="Folder for last.pt, best.pt, metrics.json, loss figures and run.json."),
    preset: Optional[str] = typer.Option(
        None, help="fast (default: batches of 128, one-cycle LR peaking at 3e-3, channels-last) or reference "
                   "(batches of 1024, lr 1e-3, ×0.999 per step)."),
    epochs: Optional[int] = typer.Option(None, help="Epochs (default 5)."),
    batch_size: Optional[int] = typer.Option(None, help="Images per batch (fast 128, reference 1024)."),
    lr: Optional[float] = typer.Option(None, help="Learning rate: the peak for onecycle, the start otherwise "
                                                  "(fast 3e-3, reference 1e-3)."),
    weight_decay: Optional[float] = typer.Option(None, help="Adam weight decay (default 1e-4)."),
    gamma: Optional[float] = typer.Option(None, help="Exponential schedule: LR factor per step (default 0.999)."),
    schedule: Optional[str] = typer.Option(None, help="onecycle, exponential or constant."),
    channels: Optional[str] = typer.Option(None, help="Encoder widths, e.g. 4,16,32 (the reference)."),
    latent_channels: Optional[int] = typer.Option(None, help="Channels of the code (default 32: 32×3×3 = 288 numbers)."),
    channels_last: Optional[bool] = typer.Option(None, "--channels-last/--no-channels-last",
                                                 help="Channels-last memory format (fast on CPU; fast preset: on)."),
    device: Optional[str] = typer.Option(None, help="auto (CUDA when available), cpu or cuda[:N]."),
    threads: Optional[int] = typer.Option(None, help="CPU threads (default: all cores available)."),
    seed: Optional[int] = typer.Option(None, help="Seed of initialisation, batch order and --data split (default 0)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last completed epoch."),
    log_every: Optional[int] = typer.Option(None, help="Progress line every this many batches (default 100)."),
    limit: Optional[int] = typer.Option(None, help="Use only the first N training and N test images (quick runs)."),
    metrics: Optional[Path] = typer.Option(None, "--metrics", help="Write the metrics JSON here too."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
):
    """Train the convolutional autoencoder; checkpoint every epoch; Ctrl-C keeps the checkpoints (--resume)."""
    maybe_reexec_with_tcmalloc()
    from latentatlas.fsutil import save_figure, write_json
    from latentatlas.images.autoencoder import load_checkpoint
    from latentatlas.images.training import LAST_CHECKPOINT, PRESETS, TrainConfig, train_autoencoder
    from latentatlas.plots.training import batch_loss_figure, epoch_loss_figure
    from latentatlas.progress import Progress

    given = dict(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, gamma=gamma,
                 schedule=schedule, channels=_parse_channels(channels), latent_channels=latent_channels,
                 channels_last=channels_last, device=device, num_threads=threads, seed=seed, log_every=log_every,
                 preset=preset)
    given = {k: v for k, v in given.items() if v is not None}
    if resume and (out / LAST_CHECKPOINT).is_file():
        # Options not given again come from the interrupted run; given ones must agree with it.
        stored = load_checkpoint(out / LAST_CHECKPOINT)[1].get("config", {})
        names = TrainConfig.__dataclass_fields__
        base = {k: (tuple(v) if k == "channels" else v) for k, v in stored.items() if k in names}
        config = TrainConfig(**{**base, **given}).validated()
    else:
        name = given.pop("preset", "fast")
        if name not in PRESETS:
            raise LatentAtlasError(f"--preset {name!r}: expected one of {', '.join(PRESETS)}")
        config = TrainConfig.from_preset(name, **given)
    log = Progress("images train", quiet)
    if "tcmalloc" in os.environ.get("LD_PRELOAD", ""):
        log(f"memory allocator: tcmalloc (preloaded; {TCMALLOC_ENV}=0 turns this off)")
    seed_value = config.seed
    train_set, test_set, source = _load_data(data_dir, data, test_data, test_fraction, limit, seed_value)
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    out.mkdir(parents=True, exist_ok=True)
    history = train_autoencoder(train_set, test_set, config, out_dir=out, resume=resume, quiet=quiet)

    completed = history.epochs_completed
    if completed:
        mean_seconds = sum(history.seconds_per_epoch) / completed
        full = {"test_mse": history.test_loss, "train_mse": history.train_loss,
                "seconds_per_epoch": history.seconds_per_epoch, "lr": history.lr,
                "batch_loss": history.batch_loss, "batches_per_epoch": history.batches_per_epoch,
                "best_epoch": history.best_epoch, "best_test_mse": history.best_test_loss,
                "epochs_completed": completed, "interrupted": history.interrupted, "device": history.device,
                "n_train": len(train_set), "n_test": len(test_set)}
        write_json(out / "metrics.json", full)
        if metrics is not None:
            write_json(metrics, full)
        save_figure(batch_loss_figure(history.batch_loss, history.batches_per_epoch), out / "loss_batches.png")
        save_figure(epoch_loss_figure(history.train_loss, history.test_loss, best_epoch=history.best_epoch),
                    out / "loss_epochs.png")
        scalars = {"test_mse": history.test_loss[-1], "best_test_mse": history.best_test_loss,
                   "best_epoch": history.best_epoch, "epochs_completed": completed,
                   "mean_seconds_per_epoch": mean_seconds, "n_train": len(train_set), "n_test": len(test_set)}
        code = "×".join(str(v) for v in load_checkpoint(out / "best.pt")[0].code_shape)
        cfg = {**config.to_dict(), "channels": ",".join(map(str, config.channels)), "data": source,
               "limit": limit, "resume": resume, "code_shape": code}
        write_json(out / "run.json", {
            "kind": "images-train",
            "title": f"Convolutional autoencoder ({code} code, {config.preset} preset)",
            "created": created, "config": cfg, "metrics": scalars,
            "figures": [
                {"file": "loss_epochs.png", "title": "Reconstruction error per epoch",
                 "caption": f"Mean squared error per pixel on {len(train_set)} training and {len(test_set)} test "
                            f"images after each epoch; best test MSE {history.best_test_loss:.4f} at epoch "
                            f"{history.best_epoch}."},
                {"file": "loss_batches.png", "title": "Training loss per batch",
                 "caption": f"MSE of every batch of {config.batch_size} images ({config.schedule} learning-rate "
                            f"schedule, peak {config.lr:g}), with a running mean."},
            ],
            "artifacts": {"checkpoint": "best.pt", "last_checkpoint": "last.pt", "metrics": "metrics.json"},
        })
        log(f"wrote {out}/ (best test MSE {history.best_test_loss:.5f} at epoch {history.best_epoch})")
    if history.interrupted:
        again = shlex.join(["latentatlas", *_strip_resume(sys.argv[1:]), "--resume"]) if _started_as_cli() else \
            f"latentatlas images train --out {shlex.quote(str(out))} --resume (with the same data options)"
        kept = (f"checkpoints of epoch {completed} kept in {out} (best: epoch {history.best_epoch})"
                if completed else "no epoch was completed, nothing to keep")
        print(f"latentatlas: interrupted; {kept}; continue with: {again}", file=sys.stderr)
        raise typer.Exit(130)
    if completed:
        print(f"test MSE {history.test_loss[-1]:.5f} after {completed} epochs "
              f"(best {history.best_test_loss:.5f}, epoch {history.best_epoch}); {out / 'best.pt'}")


def _strip_resume(argv: list[str]) -> list[str]:
    return [a for a in argv if a != "--resume"]
