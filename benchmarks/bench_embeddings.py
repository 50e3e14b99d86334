"""2-D embeddings of autoencoder codes side by side: PCA, UMAP, scikit-learn TSNE, openTSNE defaults, ours.

    .venv/bin/python benchmarks/bench_embeddings.py --checkpoint runs/ae/best.pt [--n 10000] [--full]

Codes come from the checkpoint's encoder applied to the Fashion-MNIST test split (10 000 images); without
a checkpoint the stand-in codes are the first 50 principal components of the raw pixels (the table says
which). Every method gets the same codes, seed and 2 threads; k-NN label accuracy (k=10, leave-one-out)
is computed for each and for the codes themselves. ``--full`` adds ours on all 70 000 images (train +
test). Prints a Markdown table (wall and CPU seconds; ratios to the better of two runs of ours, one before and
one after the peers); ``--out FILE`` also writes it.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np


def _load_codes(checkpoint, split):
    from latentatlas import read_images

    s = read_images(split=split)
    images, labels = s.images, s.labels
    if checkpoint:
        from latentatlas import ConvAutoencoder

        return ConvAutoencoder.load(checkpoint).transform(images), labels
    from sklearn.decomposition import PCA

    x = images.reshape(len(images), -1).astype(np.float32) / 255.0
    return PCA(50, random_state=0).fit_transform(x).astype(np.float32), labels


def _timed(fn):
    """Result, wall seconds and CPU seconds (all threads of this process: fairer on a shared machine)."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return np.asarray(out, dtype=np.float32), time.perf_counter() - start, time.process_time() - cpu


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--full", action="store_true", help="also embed all 70 000 codes with our settings")
    ap.add_argument("--skip", default="", help="comma-separated methods to skip (pca,umap,sklearn,opentsne)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))

    from latentatlas.images.latent import PCA_DIMS, TSNE_SETTINGS, embed, knn_accuracy

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    codes, labels = _load_codes(args.checkpoint, "test")
    codes, labels = codes[:args.n], labels[:args.n]
    what = f"codes of {args.checkpoint}" if args.checkpoint else "PCA-50 of raw pixels (stand-in codes)"
    log(f"{len(codes)} × {codes.shape[1]} {what}; load {os.getloadavg()}")
    rows = [("codes themselves", None, None, knn_accuracy(codes, labels, k=10))]
    seed = args.seed
    loads = [os.getloadavg()[0]]

    def run(name, fn):
        coords, secs, cpu = _timed(fn)
        acc = knn_accuracy(coords, labels, k=10)
        rows.append((name, secs, cpu, acc))
        loads.append(os.getloadavg()[0])
        log(f"{name}: {secs:.1f} s wall, {cpu:.1f} s CPU, kNN acc {acc:.3f}, load {loads[-1]:.1f}")

    run("ours: openTSNE, tuned (this project)", lambda: embed(codes, "tsne", seed=seed, n_jobs=2))
    if "pca" not in skip:
        run("PCA (scikit-learn)", lambda: embed(codes, "pca", seed=seed))
    if "umap" not in skip:
        run("UMAP (umap-learn, seeded)", lambda: embed(codes, "umap", seed=seed))
    if "sklearn" not in skip:
        from sklearn.manifold import TSNE

        run("scikit-learn TSNE (defaults, n_jobs=2)",
            lambda: TSNE(n_components=2, random_state=seed, n_jobs=2).fit_transform(codes))
    if "opentsne" not in skip:
        import openTSNE

        run("openTSNE defaults (n_jobs=2)", lambda: openTSNE.TSNE(random_state=seed, n_jobs=2).fit(codes))
    # Ours again at the end: the machine is shared, so two measurements bracket the peers'.
    run("ours again (after the peers)", lambda: embed(codes, "tsne", seed=seed, n_jobs=2))

    full = None
    if args.full:
        all_codes, all_labels = _load_codes(args.checkpoint, "all")
        log(f"all {len(all_codes)} codes ...")
        coords, secs, cpu = _timed(lambda: embed(all_codes, "tsne", seed=seed, n_jobs=2))
        acc_full = knn_accuracy(coords, all_labels, k=10, sample=10000, seed=seed)
        acc_codes = knn_accuracy(all_codes, all_labels, k=10, sample=10000, seed=seed)
        full = (len(all_codes), secs, cpu, acc_full, acc_codes)
        loads.append(os.getloadavg()[0])
        log(f"ours on {len(all_codes)}: {secs:.1f} s wall, {cpu:.1f} s CPU, kNN acc {acc_full:.3f} (codes {acc_codes:.3f})")

    by = {r[0]: r for r in rows}
    ours = min(by["ours: openTSNE, tuned (this project)"][1], by["ours again (after the peers)"][1])
    ours_cpu = min(by["ours: openTSNE, tuned (this project)"][2], by["ours again (after the peers)"][2])
    lines = [f"Codes: {len(codes)} × {codes.shape[1]}, {what}, Fashion-MNIST test split. k-NN label accuracy: "
             f"k = 10, leave-one-out. Every method: seed {seed}, 2 threads where it has them.", "",
             "| method | wall s | CPU s | k-NN accuracy | wall / ours | CPU / ours |", "|---|---:|---:|---:|---:|---:|"]
    for name, secs, cpu, acc in rows:
        if secs is None:
            lines.append(f"| {name} | | | {acc:.3f} | | |")
        else:
            lines.append(f"| {name} | {secs:.1f} | {cpu:.1f} | {acc:.3f} | {secs / ours:.2f}× | {cpu / ours_cpu:.2f}× |")
    if full:
        n, secs, cpu, acc_full, acc_codes = full
        lines += ["", f"All {n} Fashion-MNIST codes (train + test), ours: **{secs:.1f} s** wall ({cpu:.1f} s CPU), k-NN accuracy "
                      f"{acc_full:.3f} in 2-D vs {acc_codes:.3f} in the codes (10 000 seeded query points)."]
    settings = ", ".join(f"{k}={v!r}" for k, v in TSNE_SETTINGS.items())
    lines += ["", f"Our t-SNE settings: {settings}, n_jobs=2, codes wider than {PCA_DIMS} reduced to "
              f"{PCA_DIMS} dims by PCA first.",
              f"Load average (1 min) during the run: {min(loads):.1f}–{max(loads):.1f} "
              f"on {os.cpu_count()} cores ({platform.processor() or platform.machine()}, Python "
              f"{platform.python_version()})."]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
