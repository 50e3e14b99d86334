"""The autoencoder on a CUDA GPU: epoch time and test MSE of the default model on Fashion-MNIST, per GPU path.

Issue 17 ("every GPU"): the default model and training settings (the fast preset: batches of 32, one-cycle
learning rate peaking at 6e-3, channels-last), trained on Fashion-MNIST's 60 000 training images minus the
10 % validation images (seed 1), scored on the 10 000 untouched t10k test images. Each configuration is
one GPU path:

    fp32           amp="off", compile=False   (the plain path)
    amp            amp="auto"                 (bfloat16 where the GPU has it, else float16 + gradient scaler)
    amp+compile    amp="auto", compile=True   (torch.compile the training step; falls back to eager when it fails)

and, with --reference, the same three with the reference preset's batches of 1024 (the GPU's sweet spot is
larger batches than the CPU's). The first epoch of a compiled run includes compiling; the table gives the
first and the median of the later epochs. Timings are wall seconds of the training pass (the loop syncs the GPU
once per epoch); the MSE does not depend on load.

    .venv/bin/python benchmarks/bench_images_cuda.py --epochs 3 --json benchmarks/results/images-cuda.json
    .venv/bin/python benchmarks/bench_images_cuda.py --epochs 1 --limit 5000 --configs fp32,amp   # smoke test
    .venv/bin/python benchmarks/bench_images_cuda.py --device cpu --epochs 1 --limit 2000 --configs fp32  # no GPU

Data: --data-dir, else /usr/share/datasets/fashion-mnist (Debian package dataset-fashion-mnist), else
benchmarks/data/fashion-mnist (copy the four .gz files there to carry them to a machine without the package).
It prints a ready-to-paste RESULTS section (command, machine, GPU, torch, date) on stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIGS = {"fp32": {"amp": "off", "compile": False}, "amp": {"amp": "auto", "compile": False},
           "amp+compile": {"amp": "auto", "compile": True}}


def _data_dir(given: str | None) -> str | None:
    if given:
        return given
    for candidate in ("/usr/share/datasets/fashion-mnist", HERE / "data" / "fashion-mnist"):
        if Path(candidate, "train-images-idx3-ubyte.gz").is_file() or Path(candidate, "train-images-idx3-ubyte").is_file():
            return str(candidate)
    raise SystemExit("Fashion-MNIST not found: give --data-dir (a folder with train-images-idx3-ubyte.gz …)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="fp32,amp,amp+compile", help=f"comma-separated, of {', '.join(CONFIGS)}")
    ap.add_argument("--reference", action="store_true", help="also each configuration with batches of 1024")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=None, help="first N training and test images only (smoke tests)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--data-dir")
    ap.add_argument("--json")
    args = ap.parse_args()

    import torch

    from latentatlas import ConvAutoencoder
    from latentatlas.images.training import evaluate
    from latentatlas.images.workflow import train_data

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device on this machine (use --device cpu for a smoke run)")
    train, validation, test, source = train_data(data_dir=_data_dir(args.data_dir), seed=0, limit=args.limit)
    if args.device.startswith("cuda"):
        gpu = torch.cuda.get_device_name(torch.device(args.device))
        bf16 = torch.cuda.is_bf16_supported()
    else:
        gpu, bf16 = "none", False
    runs = [(name, preset) for preset in (("fast", "reference") if args.reference else ("fast",))
            for name in args.configs.split(",")]
    rows = []
    for name, preset in runs:
        if name not in CONFIGS:
            raise SystemExit(f"unknown configuration {name!r}; expected one of {', '.join(CONFIGS)}")
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        ae = ConvAutoencoder.from_preset(preset, epochs=args.epochs, seed=0, device=args.device, log_every=10**9,
                                         **CONFIGS[name]).fit(train, validation)
        fit_seconds = time.perf_counter() - t0
        h = ae.history_
        model = ae.model_.to(args.device)
        test_mse = evaluate(model, test.images)["mse"]
        later = h.seconds_per_epoch[1:]
        row = {"config": name, "preset": preset, "batch_size": h.batch_size, "precision": h.precision,
               "compiled": h.compiled, "seconds_per_epoch": h.seconds_per_epoch,
               "first_epoch_s": h.seconds_per_epoch[0], "later_epoch_s": statistics.median(later) if later else None,
               "validation_mse": h.validation_loss, "test_mse": test_mse, "fit_seconds": fit_seconds,
               "peak_gpu_mib": (torch.cuda.max_memory_allocated() / 2**20) if args.device.startswith("cuda") else None}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)

    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = shlex.join([".venv/bin/python", "benchmarks/bench_images_cuda.py", *sys.argv[1:]])
    print(f"## The autoencoder on CUDA (issue 17)\n\n    {command}\n")
    print(f"{now}; GPU {gpu} (bfloat16: {'yes' if bf16 else 'no'}), {os.cpu_count()} CPUs, "
          f"{platform.processor() or platform.machine()}, torch {torch.__version__}, load average "
          f"{os.getloadavg()[0]:.1f}. Data: {source}, {len(train)} training, {len(validation)} validation, "
          f"{len(test)} test images; {args.epochs} epoch(s), seed 0, the default architecture (288-number code).\n")
    print("| configuration | batch | precision | compiled | epoch 1 s | later epochs s (median) | test MSE | "
          "peak GPU MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        later = f"{r['later_epoch_s']:.2f}" if r["later_epoch_s"] is not None else ""
        peak = f"{r['peak_gpu_mib']:.0f}" if r["peak_gpu_mib"] is not None else ""
        print(f"| {r['config']} ({r['preset']}) | {r['batch_size']} | {r['precision']} | {'yes' if r['compiled'] else 'no'} | "
              f"{r['first_epoch_s']:.2f} | {later} | {r['test_mse']:.5f} | {peak} |")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, "gpu": gpu, "torch": torch.__version__, "date": now, "command": command}, fh,
                      indent=1)


if __name__ == "__main__":
    main()
