"""``latentatlas images train|compare|encode|embed|interpolate``: options in, one call to
:mod:`latentatlas.images.workflow`, a summary out.

Heavy imports (torch, openTSNE, umap) happen inside the commands so ``latentatlas --help`` stays fast.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import List, Optional

import typer
from typing_extensions import Annotated

from latentatlas.errors import LatentAtlasError

CheckpointOpt = Annotated[Optional[Path], typer.Option(
    "--checkpoint", help="Autoencoder checkpoint (.pt) or run folder from `images train`.")]
DataDirOpt = Annotated[Optional[Path], typer.Option(
    "--data-dir", help="Folder with Fashion-MNIST/MNIST IDX files (train-* and t10k-*, gzipped or not); default "
                       "/usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist).")]
DataOpt = Annotated[Optional[Path], typer.Option(
    "--data", help="Images instead of Fashion-MNIST: .npz (images/x, labels/y), an IDX file, or a folder of "
                   "pictures (grey or colour, any size; one sub-folder per class).")]
SplitOpt = Annotated[str, typer.Option("--split", help="Fashion-MNIST split: train, test or all (train then test).")]
LimitOpt = Annotated[Optional[int], typer.Option("--limit", help="Use only the first N images.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")]
ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", help="CPU threads (default: training in chunks, one "
                                                                    "per chunk up to the cores; otherwise half the "
                                                                    "cores, fewer on a busy machine).")]

app = typer.Typer(no_args_is_help=True)


def _progress(label: str, quiet: bool):
    from latentatlas.progress import Progress

    return Progress(label, quiet)


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


def _parse_compile(text: Optional[str]):
    if text is None:
        return None
    value = {"off": False, "false": False, "no": False, "on": True, "true": True, "yes": True,
             "auto": "auto"}.get(text.strip().lower())
    if value is None:
        raise LatentAtlasError(f"--compile {text!r}: expected off, on or auto")
    return value


def _parse_chunk_size(text: Optional[str]):
    """``--chunk-size``: a positive integer, or ``none`` for whole batches (the parameter's None)."""
    if text is None:
        return None
    if text.strip().lower() == "none":
        return "none"
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise LatentAtlasError(f"--chunk-size {text!r}: expected a positive number of images or none")
    return value


def _require_checkpoint(checkpoint: Optional[Path]) -> None:
    if checkpoint is None:
        raise LatentAtlasError("--checkpoint is required (a .pt file or run folder written by `images train`)")


def _resume_command(out: Path, data_options: list[str]) -> str:
    """The command that continues an interrupted run: the data options again (the data must be the same;
    every other setting comes from the checkpoint)."""
    return shlex.join(["latentatlas", "images", "train", *data_options, "--resume", str(out)])


@app.command()
def train(
    data_dir: DataDirOpt = None,
    data: DataOpt = None,
    test_data: Annotated[Optional[Path], typer.Option(
        "--test-data", help="Untouched test images for --data (default: hold out --test-fraction of --data, "
                            "seeded).")] = None,
    test_fraction: Annotated[float, typer.Option(
        help="Share of --data held out as the untouched test set when --test-data is absent.")] = 0.1,
    validation_fraction: Annotated[Optional[float], typer.Option(
        help="Share of the training images held out as the validation set, which picks the kept epoch "
             "(default 0.1).")] = None,
    image_size: Annotated[Optional[str], typer.Option(
        "--image-size", help="Resize every image to SIDE or HxW pixels (e.g. 64 or 48x64), keeping the aspect "
                             "ratio: scaled to cover, then centre-cropped. Default: the images' own size (a "
                             "folder of mixed sizes: the most common).")] = None,
    grayscale: Annotated[bool, typer.Option("--grayscale", help="Turn colour images into grey ones.")] = False,
    cache: Annotated[Optional[Path], typer.Option(
        "--cache", help="For a --data folder of pictures: decode them once into this .npy file and memory-map "
                        "it on later runs (while the files and options are unchanged).")] = None,
    model: Annotated[Optional[str], typer.Option(
        "--model", help="ae (plain autoencoder, default) or vae (variational).")] = None,
    beta: Annotated[Optional[float], typer.Option(
        help="VAE: weight of the KL term against the reconstruction cross-entropy (default 1, the classic "
             "evidence lower bound).")] = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Run folder for last.pt, best.pt, metrics.json, loss figures and run.json "
                            "(default: the --resume folder, else runs/images-train-<UTC time>).")] = None,
    preset: Annotated[Optional[str], typer.Option(
        help="fast (default: a stride-2 encoder and a decoder with no full-size layer, batches of 96 in two "
             "chunks of 48 on two threads, one-cycle LR peaking at 3e-2, channels-last) or reference (its "
             "max-pool network, whole batches of 1024, lr 1e-3, ×0.999 per step).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Epochs (default 5).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(
        help="Images per batch (fast: 96, or a hundredth of a set under 9 600 images, at least 16; reference "
             "1024).")] = None,
    chunk_size: Annotated[Optional[str], typer.Option(
        help="CPU: each batch goes through the network in chunks of at most this many images (own BatchNorm "
             "statistics), run side by side on the threads; 'none' for whole batches (fast 48, reference "
             "none).")] = None,
    lr: Annotated[Optional[float], typer.Option(
        help="Learning rate: the peak for onecycle, the start otherwise (fast: 3e-2 × batch / 96; reference "
             "1e-3).")] = None,
    weight_decay: Annotated[Optional[float], typer.Option(help="Weight decay (default 1e-4).")] = None,
    optimizer: Annotated[Optional[str], typer.Option(
        help="adamw (default: Adam with decoupled weight decay) or adam (the decay added to the gradient, as "
             "the reference pipeline and runs before this option).")] = None,
    gamma: Annotated[Optional[float], typer.Option(help="Exponential schedule: LR factor per step (default 0.999).")] = None,
    schedule: Annotated[Optional[str], typer.Option(help="onecycle, exponential or constant.")] = None,
    channels: Annotated[Optional[str], typer.Option(help="Encoder widths, e.g. 4,16,32 (the reference).")] = None,
    latent_channels: Annotated[Optional[int], typer.Option(
        help="Channels of the code (default 32: 32×3×3 = 288 numbers).")] = None,
    downsample: Annotated[Optional[str], typer.Option(
        help="How the encoder halves the picture twice: early (default: its first two convolutions have "
             "stride 2), stride (the second and third) or pool (the reference: full-size convolutions, then "
             "max-pools; slower).")] = None,
    upsample: Annotated[Optional[str], typer.Option(
        help="How the decoder doubles the picture the last time: direct (default: a 2×2 stride-2 transposed "
             "convolution straight to the image's channels) or transpose (the reference: to the first width, "
             "then a 3×3 one at full size; slower).")] = None,
    channels_last: Annotated[Optional[bool], typer.Option(
        "--channels-last/--no-channels-last", help="Channels-last memory format (fast on CPU; fast preset: on).")] = None,
    device: Annotated[Optional[str], typer.Option(
        help="auto (CUDA, else Apple MPS, else the CPU), cpu, cuda[:N] or mps.")] = None,
    amp: Annotated[Optional[str], typer.Option(
        "--amp", help="Mixed precision: auto (bf16 on CUDA GPUs that have it, else fp16; off on CPU/MPS), off, "
                      "bf16 or fp16.")] = None,
    compile_: Annotated[Optional[str], typer.Option(
        "--compile", help="torch.compile the training step: off (default), on, or auto (on CUDA only); a "
                          "failed compile falls back to eager.")] = None,
    threads: Annotated[Optional[int], typer.Option(
        "--threads", help="CPU threads (default: one per chunk of a batch, up to the cores; without chunks half "
                          "the cores, fewer on a busy machine).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of initialisation, batch order, VAE noise and the "
                                                     "validation/test splits (default 0).")] = None,
    resume: Annotated[Optional[Path], typer.Option(
        "--resume", help="Continue an interrupted run from this checkpoint or run folder (its last.pt); options "
                         "not given come from it.")] = None,
    log_every: Annotated[Optional[int], typer.Option(help="Progress line every this many batches (default 100).")] = None,
    limit: Annotated[Optional[int], typer.Option(help="Use only the first N training and N test images (quick runs).")] = None,
    metrics: Annotated[Optional[Path], typer.Option("--metrics", help="Write the metrics JSON here too.")] = None,
    quiet: QuietOpt = False,
):
    """Train the convolutional autoencoder (or a VAE); checkpoint every epoch; Ctrl-C keeps the checkpoints
    (--resume). The validation images pick the kept epoch; the untouched test images are scored at the end."""
    import os

    from latentatlas.cli.tcmalloc import TCMALLOC_ENV, maybe_reexec_with_tcmalloc

    maybe_reexec_with_tcmalloc()
    from latentatlas.images.autoencoder import ConvAutoencoder
    from latentatlas.images.training import resolve_resume
    from latentatlas.images.workflow import train_run

    log = _progress("images train", quiet)
    if "tcmalloc" in os.environ.get("LD_PRELOAD", ""):
        log(f"memory allocator: tcmalloc (preloaded; {TCMALLOC_ENV}=0 turns this off)")
    if resume is not None and preset is not None:
        raise LatentAtlasError("--preset cannot change on --resume: the interrupted run's settings are used")
    # The options build the estimator: on a new run from the preset, on --resume from the interrupted run's
    # checkpoint (the options given override its parameters, and must agree with its data and schedule).
    chunks = _parse_chunk_size(chunk_size)
    params = dict(validation_fraction=validation_fraction, model=model, beta=beta, epochs=epochs,
                  batch_size=batch_size, lr=lr, weight_decay=weight_decay, optimizer=optimizer, gamma=gamma,
                  schedule=schedule,
                  channels=_parse_channels(channels), latent_channels=latent_channels, channels_last=channels_last,
                  downsample=downsample, upsample=upsample, chunk_size=chunks if chunks != "none" else None,
                  device=device, num_threads=threads, seed=seed, log_every=log_every, amp=amp,
                  compile=_parse_compile(compile_))
    if resume is not None:
        estimator = ConvAutoencoder.from_checkpoint(resolve_resume(resume), **params)
    else:
        estimator = ConvAutoencoder.from_preset(preset or "fast", **params)
    if chunks == "none":  # (None values leave the preset's or checkpoint's)
        estimator.set_params(chunk_size=None)
    result = train_run(
        out, data=data, data_dir=data_dir, test_data=test_data, test_fraction=test_fraction, limit=limit,
        image_size=image_size, grayscale=grayscale, cache=cache, resume=resume, metrics_path=metrics, progress=log,
        estimator=estimator.check_params())
    h = result.history
    if result.interrupted:
        data_options: list[str] = []
        for flag, value in (("--data-dir", data_dir), ("--data", data), ("--test-data", test_data),
                            ("--limit", limit), ("--image-size", image_size), ("--cache", cache)):
            if value is not None:
                data_options += [flag, str(value)]
        if grayscale:
            data_options.append("--grayscale")
        if data is not None and test_data is None and test_fraction != 0.1:
            data_options += ["--test-fraction", str(test_fraction)]
        if h.epochs_completed:
            kept = f"checkpoints of epoch {h.epochs_completed} kept in {result.out} (best: epoch {h.best_epoch})"
            again = f"; continue with: {_resume_command(result.out, data_options)}"
        else:
            kept, again = "no epoch was completed, nothing to keep", ""
        print(f"latentatlas: interrupted; {kept}{again}", file=sys.stderr)
        raise typer.Exit(130)
    print(f"test MSE {result.test['mse']:.5f} (PSNR {result.test['psnr_db']:.2f} dB) of the epoch-{h.best_epoch} "
          f"model, chosen by validation MSE {h.best_validation_loss:.5f} after {h.epochs_completed} "
          f"epoch{'s' if h.epochs_completed != 1 else ''}; run folder {result.out}")


@app.command()
def compare(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for ae/, vae/ (two training runs) and report/.")],
    data_dir: DataDirOpt = None,
    data: DataOpt = None,
    test_data: Annotated[Optional[Path], typer.Option("--test-data", help="Untouched test images for --data.")] = None,
    image_size: Annotated[Optional[str], typer.Option("--image-size", help="Resize to SIDE or HxW pixels.")] = None,
    grayscale: Annotated[bool, typer.Option("--grayscale", help="Turn colour images into grey ones.")] = False,
    cache: Annotated[Optional[Path], typer.Option("--cache", help="Decoded pictures cache (.npy) for --data.")] = None,
    beta: Annotated[float, typer.Option(help="The VAE's KL weight.")] = 1.0,
    epochs: Annotated[Optional[int], typer.Option(help="Epochs of each model (default 5).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(
        help="Images per batch (default 96, fewer on sets under 9 600 images).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate (default 3e-2 × batch / 96).")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto, cpu, cuda[:N] or mps.")] = None,
    threads: ThreadsOpt = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of both runs (the same splits for both).")] = None,
    limit: Annotated[Optional[int], typer.Option(help="Use only the first N training and N test images.")] = None,
    quiet: QuietOpt = False,
):
    """Train a plain autoencoder and a VAE on the same images and build the report that compares them (test
    MSE, PSNR, k-NN accuracy of the codes, side by side)."""
    from latentatlas.images.workflow import compare_run

    result = compare_run(out, beta=beta, progress=_progress("images compare", quiet), data=data, data_dir=data_dir,
                         test_data=test_data, image_size=image_size, grayscale=grayscale, cache=cache, limit=limit,
                         epochs=epochs, batch_size=batch_size, lr=lr, device=device, num_threads=threads, seed=seed)
    if result.report is None:
        print("latentatlas: interrupted; nothing to compare", file=sys.stderr)
        raise typer.Exit(130)
    for name, r in (("autoencoder", result.ae), (f"VAE (beta {beta:g})", result.vae)):
        knn = r.test.get("knn_accuracy")
        print(f"{name}: test MSE {r.test['mse']:.5f}, PSNR {r.test['psnr_db']:.2f} dB"
              + (f", {r.test['knn_k']}-NN accuracy {knn:.3f}" if knn is not None else ""))
    print(f"report: {result.report.html} and {result.report.pdf}")


@app.command()
def encode(
    checkpoint: CheckpointOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Where to write the codes (.npy, N×d float32).")] = None,
    data_dir: DataDirOpt = None,
    data: DataOpt = None,
    split: SplitOpt = "test",
    limit: LimitOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per forward pass.")] = 1024,
    threads: ThreadsOpt = None,
    quiet: QuietOpt = False,
):
    """Encode images to flattened latent codes (.npy); labels go beside it (NAME.labels.npy, NAME.json)."""
    from latentatlas.images.workflow import encode_run

    if out is None:
        raise LatentAtlasError("--out is required (the .npy file to write the codes to)")
    _require_checkpoint(checkpoint)
    encode_run(checkpoint, out, data=data, data_dir=data_dir, split=split, limit=limit, batch_size=batch_size,
               threads=threads, progress=_progress("encode", quiet))


@app.command()
def embed(
    checkpoint: CheckpointOpt = None,
    codes: Annotated[Optional[Path], typer.Option(
        "--codes", help="Codes (.npy) from `images encode` instead of --checkpoint; labels are read from "
                        "NAME.labels.npy beside it.")] = None,
    labels: Annotated[Optional[Path], typer.Option("--labels", help="Labels (.npy, one int per code) for --codes.")] = None,
    data_dir: DataDirOpt = None,
    data: DataOpt = None,
    split: Annotated[Optional[str], typer.Option(
        "--split", help="Fashion-MNIST split: train, test or all (default: test, or what `encode` used for --codes).")] = None,
    method: Annotated[List[str], typer.Option(
        "--method", help="Comma-separated methods: pca, tsne, umap (repeatable).")] = ["pca,tsne,umap"],  # noqa: B006
    perplexity: Annotated[List[float], typer.Option(
        "--perplexity", help="t-SNE perplexity; repeat for several embeddings.")] = [30.0],  # noqa: B006
    count: Annotated[int, typer.Option("--count", help="Thumbnails drawn in the thumbnail scatter (a seeded random sample).")] = 1000,
    limit: LimitOpt = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every random step.")] = 0,
    k: Annotated[int, typer.Option("--neighbours", help="Neighbours in the k-NN label accuracy.")] = 10,
    knn_sample: Annotated[int, typer.Option("--knn-sample", help="Query points scored by the k-NN accuracy (all when fewer).")] = 10000,
    threads: Annotated[int, typer.Option("--threads", help="Threads for t-SNE and UMAP (-1: all cores).")] = 2,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run folder for PNGs, embedding.npz and run.json.")] = None,
    quiet: QuietOpt = False,
):
    """2-D embeddings of latent codes (PCA, t-SNE, UMAP): thumbnail and label scatters, k-NN accuracy."""
    from latentatlas.images.workflow import embed_run

    if out is None:
        raise LatentAtlasError("--out is required (the run folder to write to)")
    embed_run(out, checkpoint=checkpoint, codes=codes, labels=labels, data=data, data_dir=data_dir, split=split,
              methods=method, perplexities=perplexity, count=count, limit=limit, seed=seed, k=k,
              knn_sample=knn_sample, threads=threads, progress=_progress("embed", quiet))


@app.command()
def interpolate(
    checkpoint: CheckpointOpt = None,
    pairs: Annotated[str, typer.Option("--pairs", help="Image index pairs I:J, comma-separated, e.g. 0:1,5:9 "
                                                       "(at most 100).")] = "0:1",
    steps: Annotated[int, typer.Option("--steps", help="Decoded points per pair, both ends included (2 to 1000).")] = 10,
    data_dir: DataDirOpt = None,
    data: DataOpt = None,
    split: SplitOpt = "test",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run folder for the grid PNG and run.json.")] = None,
    quiet: QuietOpt = False,
):
    """Decode equidistant points on the line between two images' codes; one grid row per pair."""
    from latentatlas.images.workflow import interpolate_run

    if out is None:
        raise LatentAtlasError("--out is required (the run folder to write to)")
    _require_checkpoint(checkpoint)
    interpolate_run(out, checkpoint, pairs=pairs, steps=steps, data=data, data_dir=data_dir, split=split,
                    progress=_progress("interpolate", quiet))


@app.command("export-projector")
def export_projector(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="An `images embed` run folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for tensors.tsv, metadata.tsv, sprite.png and "
                                                          "projector_config.pbtxt.")],
    parquet: Annotated[Optional[Path], typer.Option("--parquet", help="Also write codes, labels and 2-D "
                                                                      "coordinates as this Parquet file.")] = None,
):
    """The embedded codes as TensorBoard Embedding Projector files (labels as metadata, thumbnails as a sprite)."""
    from latentatlas.exports import export_embedding_parquet, export_embedding_projector

    if out.resolve() == run_dir.resolve():
        raise LatentAtlasError("--out must be a new folder, not the run folder itself")
    res = export_embedding_projector(run_dir, out)
    if parquet is not None:
        export_embedding_parquet(run_dir, parquet)
    typer.echo(f"wrote {res.n_points:,} of {res.n_total:,} codes to {res.path}")
    if res.message:
        typer.echo(res.message, err=True)
