"""``latentatlas images encode|embed|interpolate``: argument parsing and file output only.

The work is done by :mod:`latentatlas.images.latent` and :mod:`latentatlas.plots.images`; heavy imports
(torch, openTSNE, umap) happen inside the commands so ``latentatlas --help`` stays fast.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import List, Optional

import typer
from typing_extensions import Annotated

from latentatlas.errors import LatentAtlasError

CheckpointOpt = Annotated[Optional[Path], typer.Option("--checkpoint", help="Autoencoder checkpoint (.pt) from `images train`.")]
DataDirOpt = Annotated[Optional[Path], typer.Option("--data-dir", help="Folder with Fashion-MNIST/MNIST IDX files (default: the Debian package's /usr/share/datasets/fashion-mnist).")]
DataOpt = Annotated[Optional[Path], typer.Option("--data", help="Images file or folder (.npz, IDX, or pictures) instead of Fashion-MNIST.")]
SplitOpt = Annotated[str, typer.Option("--split", help="Fashion-MNIST split: train, test or all (train then test).")]
LimitOpt = Annotated[Optional[int], typer.Option("--limit", help="Use only the first N images.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")]


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _load_data(data_dir: Optional[Path], data: Optional[Path], split: str, limit: Optional[int]):
    """The ImageSet the options name (first ``limit`` images)."""
    import numpy as np

    from latentatlas.images import io

    if data is not None and data_dir is not None:
        raise LatentAtlasError("give either --data or --data-dir, not both")
    if limit is not None and limit < 1:
        raise LatentAtlasError(f"--limit must be a positive integer, got {limit}")
    if data is not None:
        images = io.load_images(data)
    elif split == "all":
        train, test = io.load_fashion_mnist(data_dir, "train"), io.load_fashion_mnist(data_dir, "test")
        images = io.ImageSet(images=np.concatenate([train.images, test.images]),
                             labels=np.concatenate([train.labels, test.labels]),
                             label_names=train.label_names, source=f"{train.source} + {test.source}")
    elif split in ("train", "test"):
        images = io.load_fashion_mnist(data_dir, split)
    else:
        raise LatentAtlasError(f"--split must be train, test or all, got {split!r}")
    if len(images) == 0:
        raise LatentAtlasError(f"{images.source}: no images")
    return images.head(limit)


def _load_model(checkpoint: Optional[Path]):
    if checkpoint is None:
        raise LatentAtlasError("--checkpoint is required (a .pt file written by `latentatlas images train`)")
    if not Path(checkpoint).is_file():
        raise LatentAtlasError(f"--checkpoint {checkpoint}: no such file")
    from latentatlas.images.autoencoder import load_checkpoint

    model, _ = load_checkpoint(checkpoint)
    return model


def _save_npy(path: Path, array) -> None:
    import numpy as np

    from latentatlas.fsutil import atomic_path

    with atomic_path(path, suffix=".npy") as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)


def _sidecars(codes_path: Path) -> tuple[Path, Path]:
    """Where ``encode`` puts the labels and the description of ``codes.npy``: ``codes.labels.npy``, ``codes.json``."""
    stem = codes_path.with_suffix("")
    return stem.with_name(stem.name + ".labels.npy"), stem.with_suffix(".json")


def _write_run(out: Path, kind: str, title: str, config: dict, metrics: dict, figures: list, artifacts: dict,
               tables: dict | None = None) -> None:
    from latentatlas.fsutil import write_json

    write_json(out / "run.json", {"kind": kind, "title": title, "created": _now(), "config": config,
                                  "metrics": metrics, "figures": figures, "artifacts": artifacts,
                                  "tables": tables or {}})


def encode(
    checkpoint: CheckpointOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Where to write the codes (.npy, N×d float32).")] = None,
    data_dir: DataDirOpt = None,
    data: DataOpt = None,
    split: SplitOpt = "test",
    limit: LimitOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per forward pass.")] = 1024,
    quiet: QuietOpt = False,
):
    """Encode images to flattened latent codes (.npy); labels go beside it (NAME.labels.npy, NAME.json)."""
    import numpy as np

    from latentatlas.fsutil import write_json
    from latentatlas.images.latent import encode as encode_images
    from latentatlas.progress import Progress

    if out is None:
        raise LatentAtlasError("--out is required (the .npy file to write the codes to)")
    if out.suffix != ".npy":
        raise LatentAtlasError(f"--out {out}: expected a file name ending in .npy")
    if batch_size < 1:
        raise LatentAtlasError(f"--batch-size must be a positive integer, got {batch_size}")
    progress = Progress("encode", quiet)
    model = _load_model(checkpoint)
    images = _load_data(data_dir, data, split, limit)
    progress(f"encoding {len(images)} images of {images.shape[0]}×{images.shape[1]} from {images.source}")
    codes = encode_images(model, images, batch_size=batch_size)
    if not np.isfinite(codes).all():
        raise LatentAtlasError(f"--checkpoint {checkpoint}: the model produced NaN or infinite codes")
    labels_path, meta_path = _sidecars(out)
    _save_npy(out, codes)
    if images.labels is not None:
        _save_npy(labels_path, images.labels)
    write_json(meta_path, {"codes": out.name, "labels": labels_path.name if images.labels is not None else None,
                           "n": int(codes.shape[0]), "dims": int(codes.shape[1]),
                           "code_shape": list(getattr(model, "code_shape", ())),
                           "checkpoint": str(checkpoint), "source": images.source, "split": split,
                           "data_dir": None if data_dir is None else str(data_dir),
                           "data": None if data is None else str(data), "limit": limit,
                           "label_names": images.label_names, "created": _now()})
    progress(f"wrote {out} ({codes.shape[0]}×{codes.shape[1]}) in {progress.elapsed:.1f} s")


def _parse_methods(method: List[str]) -> list[str]:
    from latentatlas.images.latent import METHODS

    chosen: list[str] = []
    for part in ",".join(method).split(","):
        name = part.strip().lower()
        if not name:
            continue
        if name not in METHODS:
            raise LatentAtlasError(f"--method: unknown method {part.strip()!r}; choose from {', '.join(METHODS)}")
        if name not in chosen:
            chosen.append(name)
    if not chosen:
        raise LatentAtlasError(f"--method: no method given; choose from {', '.join(METHODS)}")
    return chosen


def _read_codes(codes_path: Path, labels_path: Optional[Path]):
    import numpy as np

    if not codes_path.is_file():
        raise LatentAtlasError(f"--codes {codes_path}: no such file")
    try:
        codes = np.load(codes_path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise LatentAtlasError(f"--codes {codes_path}: cannot read as .npy ({exc})") from None
    if codes.ndim != 2 or not np.issubdtype(codes.dtype, np.number):
        raise LatentAtlasError(f"--codes {codes_path}: expected a 2-D numeric array (n × d), got {codes.dtype} {codes.shape}")
    default_labels, meta_path = _sidecars(codes_path)
    meta = {}
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise LatentAtlasError(f"{meta_path}: cannot read as JSON ({exc})") from None
    path = labels_path if labels_path is not None else (default_labels if default_labels.is_file() else None)
    labels = None
    if path is not None:
        if not Path(path).is_file():
            raise LatentAtlasError(f"--labels {path}: no such file")
        try:
            labels = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise LatentAtlasError(f"--labels {path}: cannot read as .npy ({exc})") from None
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise LatentAtlasError(f"--labels {path}: expected a 1-D integer array, got {labels.dtype} {labels.shape}")
        if len(labels) != len(codes):
            raise LatentAtlasError(f"--codes {codes_path} has {len(codes)} rows but labels {path} has {len(labels)}")
    return codes.astype(np.float32, copy=False), labels, meta


def embed(
    checkpoint: CheckpointOpt = None,
    codes: Annotated[Optional[Path], typer.Option("--codes", help="Codes (.npy) from `images encode` instead of --checkpoint; labels are read from NAME.labels.npy beside it.")] = None,
    labels: Annotated[Optional[Path], typer.Option("--labels", help="Labels (.npy, one int per code) for --codes.")] = None,
    data_dir: DataDirOpt = None,
    data: DataOpt = None,
    split: Annotated[Optional[str], typer.Option("--split", help="Fashion-MNIST split: train, test or all (default: test, or what `encode` used for --codes).")] = None,
    method: Annotated[List[str], typer.Option("--method", help="Comma-separated methods: pca, tsne, umap (repeatable).")] = ["pca,tsne,umap"],  # noqa: B006
    perplexity: Annotated[List[float], typer.Option("--perplexity", help="t-SNE perplexity; repeat for several embeddings.")] = [30.0],  # noqa: B006
    count: Annotated[int, typer.Option("--count", help="Thumbnails drawn in the thumbnail scatter (a seeded random sample).")] = 1000,
    limit: LimitOpt = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every random step.")] = 0,
    k: Annotated[int, typer.Option("--k", help="Neighbours in the k-NN label accuracy.")] = 10,
    knn_sample: Annotated[int, typer.Option("--knn-sample", help="Query points scored by the k-NN accuracy (all when fewer).")] = 10000,
    jobs: Annotated[int, typer.Option("--jobs", help="Threads for t-SNE.")] = 2,
    out: Annotated[Optional[Path], typer.Option("--out", help="Run folder for PNGs, embedding.npz and run.json.")] = None,
    quiet: QuietOpt = False,
):
    """2-D embeddings of latent codes (PCA, t-SNE, UMAP): thumbnail and label scatters, k-NN accuracy."""
    import numpy as np

    from latentatlas.fsutil import save_figure, save_npz
    from latentatlas.images.latent import encode as encode_images
    from latentatlas.images.latent import knn_accuracy, sample_indices, timed_embedding
    from latentatlas.plots.images import label_scatter, thumbnail_scatter
    from latentatlas.progress import Progress

    if out is None:
        raise LatentAtlasError("--out is required (the run folder to write to)")
    if (checkpoint is None) == (codes is None):
        raise LatentAtlasError("give exactly one of --checkpoint (encode the images now) or --codes (codes from `images encode`)")
    if labels is not None and codes is None:
        raise LatentAtlasError("--labels goes with --codes; with --checkpoint the labels come from the data")
    methods = _parse_methods(method)
    for p in perplexity:
        if not p > 0:
            raise LatentAtlasError(f"--perplexity must be positive, got {p:g}")
    perplexities = list(dict.fromkeys(float(p) for p in perplexity))
    for name, value, low in (("--count", count, 0), ("--seed", seed, 0), ("--k", k, 1), ("--knn-sample", knn_sample, 1)):
        if value < low:
            raise LatentAtlasError(f"{name} must be at least {low}, got {value}")
    if jobs == 0:
        raise LatentAtlasError("--jobs must be a positive integer (or -1 for all cores), got 0")
    progress = Progress("embed", quiet)

    meta: dict = {}
    if codes is not None:
        z, y, meta = _read_codes(codes, labels)
        if data is None and data_dir is None:
            data = Path(meta["data"]) if meta.get("data") else None
            data_dir = Path(meta["data_dir"]) if meta.get("data_dir") else None
        split = split or meta.get("split") or "test"
        images = _load_data(data_dir, data, split, None)
        if len(images) < len(z) or (meta.get("limit") is None and len(images) != len(z)):
            raise LatentAtlasError(
                f"--codes {codes} has {len(z)} rows but the images ({images.source}, split {split}) number "
                f"{len(images)}; pass the --data/--data-dir/--split the codes were encoded from")
        images = images.head(len(z))
        if y is None:
            y = images.labels
        if limit is not None:
            if limit < 1:
                raise LatentAtlasError(f"--limit must be a positive integer, got {limit}")
            z, y, images = z[:limit], (None if y is None else y[:limit]), images.head(limit)
        label_names = meta.get("label_names") or images.label_names
    else:
        model = _load_model(checkpoint)
        images = _load_data(data_dir, data, split or "test", limit)
        progress(f"encoding {len(images)} images from {images.source}")
        z = encode_images(model, images)
        y = images.labels
        label_names = images.label_names
    n = len(z)
    if n < 4:
        raise LatentAtlasError(f"need at least 4 codes to embed, got {n}")
    if y is not None and len(y) != n:
        raise LatentAtlasError(f"{n} codes but {len(y)} labels")
    if y is not None and k >= n:
        raise LatentAtlasError(f"--k {k} needs more than {k} points, got {n}")
    if not np.isfinite(z).all():
        raise LatentAtlasError("the codes contain NaN or infinity")
    if "tsne" in methods and 3 * max(perplexities) >= n - 1:
        raise LatentAtlasError(f"--perplexity {max(perplexities):g} is too large for {n} points "
                               f"(t-SNE needs 3·perplexity < n - 1, i.e. perplexity < {(n - 1) / 3:.4g})")

    out.mkdir(parents=True, exist_ok=True)
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
        progress(f"{k}-NN label accuracy of the {z.shape[1]}-dim codes: {acc:.3f}")

    runs: list[tuple[str, float | None]] = []
    for m in methods:
        runs += [("tsne", p) for p in perplexities] if m == "tsne" else [(m, None)]
    for m, p in runs:
        key = m if p is None else f"tsne_p{p:g}"
        label = f"t-SNE (perplexity {p:g})" if m == "tsne" else {"pca": "PCA", "umap": "UMAP"}[m]
        progress(f"{label} of {n} codes ...")
        kw = {"perplexity": p, "n_jobs": jobs} if m == "tsne" else {}
        coords, secs = timed_embedding(z, m, seed=seed, **kw)
        arrays[f"coords_{key}"] = coords
        if m == "tsne" and p == perplexities[0]:
            arrays["coords_tsne"] = coords
        metrics[f"seconds_{key}"] = round(secs, 3)
        row = {"method": label, "dims": 2, "seconds": round(secs, 3), "knn_accuracy": None}
        msg = f"{label}: {secs:.1f} s"
        if y is not None:
            acc = knn_accuracy(coords, y, k=k, sample=knn_q, seed=seed)
            metrics[f"knn_accuracy_{key}"] = acc
            if m == "tsne" and p == perplexities[0]:
                metrics["knn_accuracy_tsne"] = acc
            row["knn_accuracy"] = acc
            msg += f", {k}-NN label accuracy {acc:.3f}"
        rows.append(row)
        progress(msg)
        if y is not None:
            fig = label_scatter(coords, y, label_names, title=f"{label} of {n} latent codes")
            save_figure(fig, out / f"{key}_labels.png")
            figures.append({"file": f"{key}_labels.png", "title": f"{label}: codes coloured by class",
                            "caption": f"{n} codes; {k}-NN label accuracy in 2-D "
                                       f"{row['knn_accuracy']:.3f} vs {metrics['knn_accuracy_latent']:.3f} in the latent space."})
        if len(sample):
            fig = thumbnail_scatter(coords[sample], images.images[sample], None if y is None else y[sample],
                                    label_names, title=f"{label}: {len(sample)} of {n} images at their 2-D position")
            save_figure(fig, out / f"{key}_thumbnails.png", dpi=200)  # about one screen pixel per image pixel
            figures.append({"file": f"{key}_thumbnails.png", "title": f"{label}: thumbnails",
                            "caption": f"A seeded random sample of {len(sample)} images drawn at their embedded positions."})

    names = np.asarray([str(s) for s in label_names] if label_names else [], dtype=str)
    save_npz(out / "embedding.npz", **arrays,
             labels=np.asarray(y if y is not None else np.full(n, -1), dtype=np.int64),
             label_names=names, thumbnails=images.images, codes=z.astype(np.float32))
    config = {"checkpoint": None if checkpoint is None else str(checkpoint),
              "codes": None if codes is None else str(codes), "source": images.source, "split": split,
              "methods": ",".join(methods), "perplexities": ",".join(f"{p:g}" for p in perplexities),
              "count": count, "limit": limit, "seed": seed, "k": k, "knn_sample": knn_sample, "jobs": jobs}
    _write_run(out, "images-embed", f"2-D embeddings of {n} latent codes", config, metrics, figures,
               {"embedding": "embedding.npz"}, {"embeddings": rows})
    progress(f"wrote {out} in {progress.elapsed:.1f} s")


def _parse_pairs(pairs: str, n: int, source: str) -> list[tuple[int, int]]:
    out = []
    for part in pairs.split(","):
        part = part.strip()
        if not part:
            continue
        bits = part.split(":")
        if len(bits) != 2:
            raise LatentAtlasError(f"--pairs: {part!r} is not of the form I:J (e.g. --pairs 0:1,5:9)")
        try:
            i, j = int(bits[0]), int(bits[1])
        except ValueError:
            raise LatentAtlasError(f"--pairs: {part!r}: indices must be integers (e.g. --pairs 0:1,5:9)") from None
        for idx in (i, j):
            if not 0 <= idx < n:
                raise LatentAtlasError(f"--pairs: index {idx} in {part!r} is out of range: {source} has {n} images (0..{n - 1})")
        out.append((i, j))
    if not out:
        raise LatentAtlasError("--pairs: no pair given (e.g. --pairs 0:1,5:9)")
    return out


def interpolate(
    checkpoint: CheckpointOpt = None,
    pairs: Annotated[str, typer.Option("--pairs", help="Image index pairs I:J, comma-separated, e.g. 0:1,5:9.")] = "0:1",
    steps: Annotated[int, typer.Option("--steps", help="Decoded points per pair, both ends included.")] = 10,
    data_dir: DataDirOpt = None,
    data: DataOpt = None,
    split: SplitOpt = "test",
    out: Annotated[Optional[Path], typer.Option("--out", help="Run folder for the grid PNG and run.json.")] = None,
    quiet: QuietOpt = False,
):
    """Decode equidistant points on the line between two images' codes; one grid row per pair."""
    import numpy as np

    from latentatlas.fsutil import save_figure, save_npz
    from latentatlas.images.latent import interpolate as interpolate_codes
    from latentatlas.plots.images import interpolation_grid
    from latentatlas.progress import Progress

    if out is None:
        raise LatentAtlasError("--out is required (the run folder to write to)")
    if steps < 2:
        raise LatentAtlasError(f"--steps must be at least 2 (both ends are included), got {steps}")
    progress = Progress("interpolate", quiet)
    model = _load_model(checkpoint)
    images = _load_data(data_dir, data, split, None)
    chosen = _parse_pairs(pairs, len(images), f"{images.source}" + ("" if data is not None else f" ({split})"))
    rows, names, frames_all = [], [], []
    for i, j in chosen:
        frames = interpolate_codes(model, images.images[i], images.images[j], steps)
        rows.append((images.images[i], images.images[j], frames))
        frames_all.append(frames)

        def name(idx):
            if images.labels is not None and images.label_names and 0 <= images.labels[idx] < len(images.label_names):
                return f"#{idx} {images.label_names[images.labels[idx]]}"
            return f"#{idx}"

        names.append((name(i), name(j)))
        progress(f"pair {i}:{j}: {steps} frames")
    out.mkdir(parents=True, exist_ok=True)
    fig = interpolation_grid(rows, names=names, title=f"Interpolation in latent space ({steps} steps)")
    save_figure(fig, out / "interpolation.png")
    save_npz(out / "frames.npz", frames=np.stack(frames_all).astype(np.float32),
             pairs=np.asarray(chosen, dtype=np.int64))
    figures = [{"file": "interpolation.png", "title": "Interpolation between pairs of images",
                "caption": "Each row: image A, the decoded points on the straight line from A's code to B's "
                           "(0% = reconstruction of A, 100% = reconstruction of B), image B."}]
    config = {"checkpoint": str(checkpoint), "pairs": ",".join(f"{i}:{j}" for i, j in chosen), "steps": steps,
              "source": images.source, "split": split}
    _write_run(out, "images-interpolate", f"Latent interpolation, {len(chosen)} pair(s)", config,
               {"n_pairs": len(chosen), "steps": steps}, figures, {"frames": "frames.npz"})
    progress(f"wrote {out} in {progress.elapsed:.1f} s")


from latentatlas.cli.images_train import train  # noqa: E402

app = typer.Typer(no_args_is_help=True)
app.command()(train)
app.command()(encode)
app.command()(embed)
app.command()(interpolate)
