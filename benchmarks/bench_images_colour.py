"""Colour images: the plain autoencoder, the VAE and a PCA of the same code size, side by side.

No colour image data set ships inside a package this project can install from its registries (CIFAR, SVHN
and the like are downloaded at run time), so the data are crops of the two colour photographs bundled with
scikit-learn (``sklearn.datasets.load_sample_images``: "china.jpg" and "flower.jpg", 427×640 each):

- training crops (``--n-train``, seeded, ``--side`` pixels square) come from the left 70 % of each photo,
  test crops (``--n-test``) from the right 25 % (a 5 % gap between, so no test pixel was ever trained on);
- a crop's label is its photo and the quadrant of the test area its centre lies in (8 classes), for the
  k-NN accuracy of the codes (leave-one-out among the test codes, k = 10).

Every model gets the same training crops. The autoencoders hold out 10 % of them as validation images (the
epoch with the lowest validation loss is kept); the test crops are touched only for the final scores:
reconstruction MSE per pixel (pixels in [0, 1]), PSNR (dB) and k-NN accuracy of the codes. PCA keeps as
many components as the autoencoder's code has numbers.

    .venv/bin/python benchmarks/bench_images_colour.py --epochs 10 --json benchmarks/results/images-colour.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np


def crops(photo: np.ndarray, n: int, side: int, x0: int, x1: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random side×side crops whose columns lie in [x0, x1); returns (N×3×side×side, centre x and y)."""
    h, w, _ = photo.shape
    ys = rng.integers(0, h - side + 1, size=n)
    xs = rng.integers(x0, x1 - side + 1, size=n)
    out = np.stack([photo[y:y + side, x:x + side] for y, x in zip(ys, xs)])
    return np.ascontiguousarray(np.moveaxis(out, -1, 1)), np.stack([xs + side / 2, ys + side / 2], 1)


def data(n_train: int, n_test: int, side: int, seed: int):
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    rng = np.random.default_rng(seed)
    train, test, labels = [], [], []
    for p, photo in enumerate(photos):
        h, w, _ = photo.shape
        a, _ = crops(photo, n_train // len(photos), side, 0, int(0.70 * w), rng)
        b, centre = crops(photo, n_test // len(photos), side, int(0.75 * w), w, rng)
        mid_x, mid_y = (0.75 * w + w) / 2, h / 2
        quadrant = (centre[:, 0] >= mid_x).astype(int) + 2 * (centre[:, 1] >= mid_y).astype(int)
        train.append(a)
        test.append(b)
        labels.append(4 * p + quadrant)
    order = rng.permutation(sum(len(t) for t in train))
    return np.concatenate(train)[order], np.concatenate(test), np.concatenate(labels)


def scores(test: np.ndarray, recon: np.ndarray, codes: np.ndarray, labels: np.ndarray) -> dict:
    from latentatlas.images.latent import knn_accuracy

    x = test.astype(np.float64) / 255.0
    mse = float(np.mean((recon.astype(np.float64) - x) ** 2))
    return {"test_mse": mse, "test_psnr_db": 10 * math.log10(1 / mse),
            "knn_accuracy": knn_accuracy(codes.astype(np.float32), labels, k=10)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=8000)
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--side", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--betas", default="1,0.1", help="comma-separated VAE β values ('' for none)")
    ap.add_argument("--channels", default="4,16,32", help="encoder widths of the autoencoders")
    ap.add_argument("--no-pca", action="store_true", help="skip the PCA and raw-pixel rows")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json")
    args = ap.parse_args()

    from sklearn.decomposition import PCA

    from latentatlas import ConvAutoencoder

    train, test, labels = data(args.n_train, args.n_test, args.side, args.seed)
    rows = []
    widths = tuple(int(c) for c in args.channels.split(","))
    common = dict(epochs=args.epochs, seed=args.seed, num_threads=args.threads, channels=widths)
    models = [("autoencoder", dict(model="ae"))] + [(f"VAE β={b}", dict(model="vae", beta=float(b)))
                                                    for b in args.betas.split(",") if b.strip()]
    code_size = None
    for name, params in models:
        t0 = time.perf_counter()
        ae = ConvAutoencoder(**common, **params).fit(train)
        seconds = time.perf_counter() - t0
        codes = ae.transform(test)
        recon = ae.inverse_transform(codes)
        code_size = codes.shape[1]
        row = {"model": name + ("" if widths == (4, 16, 32) else f" (widths {args.channels})"), "code": code_size, "epochs": args.epochs, "best_epoch": ae.history_.best_epoch,
               "fit_seconds": seconds, "threads": ae.history_.threads, **scores(test, recon, codes, labels)}
        if ae.history_.validation_kl:
            row["test_kl"] = None
            from latentatlas.images.training import evaluate

            row["test_kl"] = evaluate(ae.model_, test, beta=ae.beta)["kl"]
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    if args.no_pca:
        rows.append({"model": "(PCA skipped)", "code": code_size})
        return _report(args, train, test, rows)
    flat = train.reshape(len(train), -1).astype(np.float32) / 255.0
    t0 = time.perf_counter()
    pca = PCA(n_components=code_size, random_state=args.seed).fit(flat)
    seconds = time.perf_counter() - t0
    tflat = test.reshape(len(test), -1).astype(np.float32) / 255.0
    codes = pca.transform(tflat)
    recon = np.clip(pca.inverse_transform(codes), 0, 1).reshape(test.shape)
    rows.append({"model": f"PCA ({code_size} components)", "code": code_size, "epochs": None, "best_epoch": None,
                 "fit_seconds": seconds, "threads": None, **scores(test, recon, codes, labels)})
    from latentatlas.images.latent import knn_accuracy

    rows.append({"model": "raw pixels (no code)", "code": tflat.shape[1],
                 "knn_accuracy": knn_accuracy(tflat, labels, k=10)})
    _report(args, train, test, rows)


def _report(args, train, test, rows) -> None:
    print(f"\n{len(train)} training and {len(test)} test crops of {args.side}×{args.side} colour pixels; "
          f"{platform.node()}, {len(os.sched_getaffinity(0))} cores, load {os.getloadavg()[0]:.1f}\n")
    print("| model | code numbers | test MSE | PSNR (dB) | 10-NN accuracy | test KL (nats) | best epoch | fit s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        def f(key, fmt):
            v = r.get(key)
            return "" if v is None else format(v, fmt)
        print(f"| {r['model']} | {r['code']} | {f('test_mse', '.5f')} | {f('test_psnr_db', '.2f')} | "
              f"{f('knn_accuracy', '.3f')} | {f('test_kl', '.1f')} | {f('best_epoch', 'd')} | {f('fit_seconds', '.0f')} |")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
