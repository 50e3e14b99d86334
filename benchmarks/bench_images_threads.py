"""Autoencoder training speed by CPU thread setting, on the machine as it is and with extra load.

Question: is the default thread setting (:func:`latentatlas.images.training.default_threads`) ever slower
than one thread, and how far is it from the best setting? Each setting trains the default model with the
library's own loop (28×28 Fashion-MNIST, the "fast" preset: batches of 96 in two chunks of 48) for ``--batches``
batches in a subprocess of its own (the first 3 batches are not timed); settings are interleaved over ``--rounds`` rounds so that a change in the machine's load hits
them all. ``--load N`` adds N busy-looping processes for the whole run (a machine shared with other jobs).

    .venv/bin/python benchmarks/bench_images_threads.py --load 0 --load 2 --json benchmarks/results/images-threads.json

Prints one table per load: seconds per batch (median over rounds, and min–max), the load average seen, and
the ratio to the best setting.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import time

CHILD = r"""
import json, os, sys, time
from latentatlas.images.io import read_images
from latentatlas.images.autoencoder import ConvAutoencoder
from latentatlas.images.training import run_training
setting, batches = sys.argv[1], int(sys.argv[2])
cfg = ConvAutoencoder(epochs=1, log_every=10**9, num_threads=None if setting == "default" else int(setting))
train = read_images(split="train", limit=max(9600, (batches + 3) * 96))  # the automatic batch size is 96 from 9 600
valid = read_images(split="test", limit=200)
stamps = []
load = os.getloadavg()[0]

def on_batch(epoch, batch, loss):
    stamps.append(time.perf_counter())
    if len(stamps) == batches + 3:
        raise KeyboardInterrupt  # (the loop's Ctrl-C: it stops after this batch)

result = run_training(train, valid, cfg, on_batch=on_batch)
dt = (stamps[-1] - stamps[2]) / (len(stamps) - 3)
print(json.dumps({"threads": result.history.threads, "s_per_batch": dt, "load": load}))
"""


def _spin(stop) -> None:
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def measure(settings: list[str], batches: int, rounds: int, extra_load: int) -> dict:
    stop = mp.Event()
    spinners = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(extra_load)]
    for p in spinners:
        p.start()
    results: dict[str, list[dict]] = {s: [] for s in settings}
    try:
        time.sleep(2 if extra_load else 0)
        for r in range(rounds):
            for s in (settings if r % 2 == 0 else settings[::-1]):
                out = subprocess.run([sys.executable, "-c", CHILD, s, str(batches)], capture_output=True, text=True,
                                     check=True)
                results[s].append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(f"  load +{extra_load} round {r + 1} {s}: {results[s][-1]}", file=sys.stderr)
    finally:
        stop.set()
        for p in spinners:
            p.join(timeout=5)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settings", default="1,2,default", help="comma-separated thread counts and/or 'default'")
    ap.add_argument("--batches", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--load", type=int, action="append", help="extra busy processes (repeatable; default 0)")
    ap.add_argument("--json", help="write the raw results here")
    args = ap.parse_args()
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    cores = len(os.sched_getaffinity(0))
    report = {"machine": platform.platform(), "cores": cores, "batches": args.batches, "rounds": args.rounds,
              "runs": {}}
    for load in args.load or [0]:
        res = measure(settings, args.batches, args.rounds, load)
        report["runs"][str(load)] = res
        med = {s: statistics.median(r["s_per_batch"] for r in res[s]) for s in settings}
        best = min(med.values())
        loads = [r["load"] for s in settings for r in res[s]]
        print(f"\n{cores} cores, {load} extra busy processes, load average {min(loads):.1f}–{max(loads):.1f}:")
        print("| setting | threads | s/batch (median) | min–max | vs best |")
        print("|---|---|---|---|---|")
        for s in settings:
            vals = [r["s_per_batch"] for r in res[s]]
            print(f"| {s} | {res[s][0]['threads']} | {med[s]:.4f} | {min(vals):.4f}–{max(vals):.4f} | "
                  f"{med[s] / best:.2f}× |")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)


if __name__ == "__main__":
    main()
