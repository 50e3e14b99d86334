"""One epoch on Fashion-MNIST: which training settings reach the lowest MSE in a single epoch?

Issue 17's target: test MSE ≤ 0.0107 after **one** epoch (the seed's figure after 27). Every configuration
trains the default architecture for one epoch (the one-cycle schedule then spans that epoch) on the same
54 000 training images; the 6 000 validation images (10 % of Fashion-MNIST's train file, seed 1) choose
between configurations; the 10 000 t10k test images are scored once per configuration and chose nothing.

    .venv/bin/python benchmarks/bench_images_one_epoch.py --json benchmarks/results/images-one-epoch.json
    .venv/bin/python benchmarks/bench_images_one_epoch.py --configs "128:3e-3,64:5e-3"   # batch:lr pairs
    .venv/bin/python benchmarks/bench_images_one_epoch.py --configs "128:1.5e-2" --seeds 0,1,2
    .venv/bin/python benchmarks/bench_images_one_epoch.py --configs "64:1e-2:pool,64:1e-2:stride" --seeds 0,1,2

A third field in a configuration names the encoder's ``downsample`` (``early``, ``stride`` or ``pool``; default:
the estimator's default), a fourth the ``optimizer`` (``adamw`` or ``adam``; default: the estimator's); fields of
the form ``name=value`` set any other estimator parameter (``upsample=transpose``, ``chunk_size=none``):

    .venv/bin/python benchmarks/bench_images_one_epoch.py --configs "128:1.5e-2,128:1.5e-2:upsample=transpose" \
        --seeds 0,1,2 Each fit's CPU seconds (this process: the training pass and the validation scoring) are
recorded beside its wall seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="128:3e-3,128:6e-3,64:3e-3,64:6e-3",
                    help="comma-separated batch:peak-lr pairs (one-cycle schedule)")
    ap.add_argument("--epochs", type=int, default=1, help="epochs per configuration (the schedule spans them)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seeds", default="0", help="comma-separated model seeds (weights and batch order; the "
                    "validation split stays that of seed 0)")
    ap.add_argument("--json")
    args = ap.parse_args()

    from latentatlas import ConvAutoencoder
    from latentatlas.images.training import evaluate
    from latentatlas.images.workflow import train_data

    train, validation, test, _ = train_data(seed=0)
    rows = []
    for part, seed in [(p, int(s)) for p in args.configs.split(",") for s in args.seeds.split(",")]:
        batch, lr, *rest = part.split(":")
        named = dict(field.split("=", 1) for field in rest if "=" in field)
        named = {k: None if v.lower() == "none" else int(v) if v.isdigit() else v for k, v in named.items()}
        rest = [field for field in rest if "=" not in field]
        downsample = rest[0] if rest else ConvAutoencoder().downsample
        optimizer = rest[1] if len(rest) > 1 else ConvAutoencoder().optimizer
        t0, c0 = time.perf_counter(), time.process_time()
        ae = ConvAutoencoder(epochs=args.epochs, batch_size=int(batch), lr=float(lr), seed=seed, downsample=downsample,
                             optimizer=optimizer, num_threads=args.threads, **named).fit(train, validation)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        with ae._threads():
            test_mse = evaluate(ae.model_, test.images)["mse"]
        row = {"batch_size": int(batch), "lr": float(lr), "downsample": downsample, "optimizer": optimizer,
               "upsample": ae.upsample, "chunk_size": ae.chunk_size, "seed": seed, "epochs": args.epochs,
               "validation_mse": ae.history_.best_validation_loss, "validation_by_epoch": ae.history_.validation_loss,
               "test_mse": test_mse, "fit_seconds": seconds, "fit_cpu_seconds": cpu, "threads": ae.history_.threads,
               "load": os.getloadavg()[0]}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    best = min(rows, key=lambda r: r["validation_mse"])
    print(f"\n{len(train)} training, {len(validation)} validation, {len(test)} test images; {args.epochs} epoch(s) "
          f"each\n")
    print("| downsample | upsample | optimizer | batch | chunk | peak lr | seed | validation MSE | test MSE | fit s "
          "| fit CPU s | threads | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        mark = " (lowest)" if r is best else ""
        print(f"| {r['downsample']} | {r['upsample']} | {r['optimizer']} | {r['batch_size']} | {r['chunk_size']} "
              f"| {r['lr']:g} | {r['seed']} | {r['validation_mse']:.5f}{mark} | {r['test_mse']:.5f} "
              f"| {r['fit_seconds']:.0f} | {r['fit_cpu_seconds']:.0f} | {r['threads']} | {r['load']:.1f} |")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
