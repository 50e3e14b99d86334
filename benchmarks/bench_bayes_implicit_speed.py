"""Question: what does one Gibbs sample with implicit features cost against one ALS iteration (issue 16 target:
at most 3x at 10 M ratings, k = 64), for the two sweeps of the implicit/feature block?

* ALS iteration: both half-steps of ``kernels.als.cg_rows`` (2 CG steps, float32), as ``LatentFactorModel`` runs
  them by default (the same measurement as ``bench_bayes.py --scale``).
* Gibbs sample: every step of one ``gibbs_fit`` sample (float64, default noise model: per-user and per-item
  precisions): implicit "none", implicit "both" with the exact block sweep (a K x K Gram matrix per user and per
  item, ``sweep="block"``), and "both" with the coordinate-wise sweep (``sweep="coordinate"``, one residual per
  rating, libFM's order).

CPU seconds (``time.process_time``, all threads) are the figure to compare on a shared machine; wall seconds
are printed beside them. Both run on numba's workqueue threading layer, as ``LatentFactorModel.fit`` chooses it
(``prefer_workqueue``): before, the ALS baseline ran first and so chose the default layer, whose OpenMP workers
spin while the sampler's sequential sweeps run (at 1 M ratings 1.37 instead of 0.62 CPU s per sample). Each Gibbs figure is the cheapest of the samples after the first (the first pays for
numba compilation on a cold cache).

Usage: nice .venv/bin/python benchmarks/bench_bayes_implicit_speed.py --n-ratings 10000000 --k 64 \\
           [--samples 3] [--skip-block] [--out benchmarks/results/bayes_implicit_speed.json]

``--paired N``: instead, N Gibbs samples (implicit both, coordinate sweep), each followed at once by one ALS
iteration from the sampler's callback, and the median of the N ratios: on a VM whose speed drifts from minute to
minute (the same ALS iteration costs 1.7-2.6 CPU s), each ratio's two sides see the same machine.

``--ml100k``: instead, validation RMSE and CPU seconds per sample of the two sweeps on MovieLens-100K (random
80/10/10 split, seed 0; k = 24, ``--samples`` kept samples (default here 50) after 10; chains seeded
``--seeds``): do they fit alike? ``--dataset bookx`` (any name of benchmarks/datasets.py) for another set;
``--variants block,coordinate,coordinate_effective,coordinate_alternate`` adds the coordinate sweep with the
implicit vectors drawn whole given the rows' effective vectors (``bayes._IMPLICIT_UPDATE = "effective"``), and
that on even samples only, to the comparison; ``--implicit-update`` chooses it for the speed run (whose JSON then
also lists every sample's CPU seconds: with "alternate" the samples alternate between the two costs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def clocks():
    return time.process_time(), time.perf_counter()


def als_step(r, k: int):
    """One ALS iteration's work as a function (compiled and warmed)."""
    from latentatlas.ratings.kernels import als

    resid = (r.values - r.values.mean()).astype(np.float32)
    ucsr = als.compressed(r.users, r.items, resid, r.n_users, np.float32)
    icsr = als.compressed(r.items, r.users, resid, r.n_items, np.float32)
    rng = np.random.default_rng(0)
    Q = rng.random((r.n_users, k), dtype=np.float32) / np.sqrt(k)
    P = rng.random((r.n_items, k), dtype=np.float32) / np.sqrt(k)

    def step():
        als.cg_rows(*icsr, Q, P, 0.12, True, 2, 64)
        als.cg_rows(*ucsr, P, Q, 0.12, True, 2, 64)

    step()  # compile / warm
    return step


def als_iteration(r, k: int, repeat: int = 3) -> dict:
    step = als_step(r, k)
    cpu, wall = [], []
    for _ in range(repeat):
        c0, w0 = clocks()
        step()
        c1, w1 = clocks()
        cpu.append(c1 - c0)
        wall.append(w1 - w0)
    return {"cpu_s": min(cpu), "wall_s": min(wall)}


def gibbs_sample(r, k: int, samples: int, **kw) -> dict:
    from latentatlas.ratings.bayes import gibbs_fit

    marks = [clocks()]
    gibbs_fit(r.users, r.items, r.values, r.n_users, r.n_items, k=k, n_samples=samples, burn_in=0, seed=0,
              n_stored=1, callback=lambda t, rec: marks.append(clocks()), **kw)
    cpu = np.diff([m[0] for m in marks])
    wall = np.diff([m[1] for m in marks])
    return {"cpu_s": float(cpu[1:].min()), "wall_s": float(wall[1:].min()), "first_cpu_s": float(cpu[0]),
            "cpu_s_each": [round(float(c), 3) for c in cpu]}


def paired(r, k: int, pairs: int, **kw) -> dict:
    """``pairs`` Gibbs samples, each followed by one ALS iteration on the same data (run from the sampler's
    callback): the ratio of each pair is measured within seconds, so the machine's drift (other tenants of the VM
    host, clock) moves both sides of it alike."""
    from latentatlas.ratings.bayes import gibbs_fit

    step = als_step(r, k)
    gibbs, als_cpu, als_wall, gibbs_wall = [], [], [], []
    last = [clocks()]

    def after_sample(t, rec):
        c0, w0 = clocks()
        gibbs.append(c0 - last[0][0])
        gibbs_wall.append(w0 - last[0][1])
        step()
        c1, w1 = clocks()
        als_cpu.append(c1 - c0)
        als_wall.append(w1 - w0)
        last[0] = clocks()

    gibbs_fit(r.users, r.items, r.values, r.n_users, r.n_items, k=k, n_samples=pairs + 1, burn_in=0, seed=0,
              n_stored=1, callback=after_sample, **kw)
    ratio = np.array(gibbs[1:]) / np.array(als_cpu[1:])  # the first sample pays for compilation
    return {"gibbs_cpu_s": [round(x, 3) for x in gibbs[1:]], "als_cpu_s": [round(x, 3) for x in als_cpu[1:]],
            "gibbs_wall_s": [round(x, 3) for x in gibbs_wall[1:]], "als_wall_s": [round(x, 3) for x in als_wall[1:]],
            "x_als_cpu_each": [round(float(x), 3) for x in ratio], "x_als_cpu_median": float(np.median(ratio)),
            "x_als_wall_median": float(np.median(np.array(gibbs_wall[1:]) / np.array(als_wall[1:])))}


#: --variants: the sweep and, for "coordinate", how the implicit vectors are drawn (bayes._IMPLICIT_UPDATE)
VARIANTS = {"block": ("block", "own"), "coordinate": ("coordinate", "own"),
            "coordinate_effective": ("coordinate", "effective"), "coordinate_alternate": ("coordinate", "alternate")}


def real_set(name="ml100k", seeds=(0, 1), n_samples: int = 50, variants=("block", "coordinate")) -> dict:
    from datasets import load, random_split

    from latentatlas.ratings import bayes
    from latentatlas.ratings.bayes import gibbs_fit

    d = load(name)
    tr, va, _ = random_split(len(d), 0)
    out = {}
    for variant in variants:
        sweep, update = VARIANTS[variant]
        bayes._IMPLICIT_UPDATE = update
        for seed in seeds:
            marks = [clocks()]
            fit = gibbs_fit(d.users[tr], d.items[tr], d.ratings[tr], d.n_users, d.n_items, k=24, n_samples=n_samples,
                            burn_in=10, seed=seed, sweep=sweep, validation=(d.users[va], d.items[va], d.ratings[va]),
                            callback=lambda t, rec: marks.append(clocks()))
            cpu = np.diff([m[0] for m in marks])
            out[f"{variant}_seed{seed}"] = {"validation_rmse": fit.history["validation_rmse"][-1],
                                            "cpu_s_per_sample": float(np.median(cpu[1:]))}
            print(json.dumps(out), flush=True)
    bayes._IMPLICIT_UPDATE = "own"
    for variant in variants:
        r = [v["validation_rmse"] for key, v in out.items() if key.startswith(variant + "_seed")]
        out[f"{variant}_mean"] = float(np.mean(r))
    return out


def main(argv=None) -> None:
    import numba

    from latentatlas.ratings.synthetic import synthetic

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-ratings", type=int, default=10_000_000)
    ap.add_argument("--n-users", type=int, default=70_000)
    ap.add_argument("--n-items", type=int, default=10_000)
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--samples", type=int, default=None, help="samples per run (default 3; --ml100k: 50 kept)")
    ap.add_argument("--skip-block", action="store_true", help="leave out the block sweep (slow at 10 M)")
    ap.add_argument("--paired", type=int, default=0, metavar="N",
                    help="instead: N Gibbs samples (implicit both, coordinate sweep), each followed by one ALS "
                         "iteration, and the ratio of each pair")
    ap.add_argument("--skip-none", action="store_true", help="leave out the sample without implicit features")
    ap.add_argument("--out", default=None)
    ap.add_argument("--ml100k", action="store_true", help="validation RMSE of both sweeps on MovieLens-100K")
    ap.add_argument("--seeds", default="0,1", help="--ml100k: the chains' seeds")
    ap.add_argument("--dataset", default="ml100k", help="--ml100k: the data set instead (benchmarks/datasets.py)")
    ap.add_argument("--variants", default="block,coordinate",
                    help="--ml100k: of " + ", ".join(VARIANTS) + " (coordinate_effective: the implicit vectors "
                         "drawn whole given the rows' effective vectors; coordinate_alternate: that on even samples)")
    ap.add_argument("--implicit-update", default="own", choices=("own", "effective", "alternate"),
                    help="sweep='coordinate': how the implicit vectors are drawn (bayes._IMPLICIT_UPDATE)")
    args = ap.parse_args(argv)
    if args.ml100k:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        out = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
               args.dataset: real_set(args.dataset, tuple(int(x) for x in args.seeds.split(",")),
                                      args.samples or 50, tuple(args.variants.split(",")))}
        out["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(json.dumps(out), flush=True)
        return
    from latentatlas.ratings.kernels.als import prefer_workqueue

    prefer_workqueue()  # as LatentFactorModel.fit does, before the first parallel kernel
    from latentatlas.ratings import bayes

    bayes._IMPLICIT_UPDATE = args.implicit_update
    r = synthetic(n_users=args.n_users, n_items=args.n_items, n_ratings=args.n_ratings, seed=0)
    out = {"n_ratings": len(r), "n_users": r.n_users, "n_items": r.n_items, "k": args.k,
           "threads": numba.get_num_threads(), "machine": f"{platform.node()} {os.cpu_count()} cpus",
           "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "implicit_update": args.implicit_update}
    if args.paired:
        out["paired"] = paired(r, args.k, args.paired, implicit="both", sweep="coordinate")
        out["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(json.dumps(out), flush=True)
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(out, indent=1))
        return
    out["als"] = als_iteration(r, args.k)
    out["threading_layer"] = numba.threading_layer()
    print(json.dumps(out), flush=True)
    runs = [] if args.skip_none else [("none", {"implicit": "none"})]
    runs.append(("both_coordinate", {"implicit": "both", "sweep": "coordinate"}))
    if not args.skip_block:
        runs.append(("both_block", {"implicit": "both", "sweep": "block"}))
    for name, kw in runs:
        out[name] = gibbs_sample(r, args.k, args.samples or 3, **kw)
        out[name]["x_als_cpu"] = out[name]["cpu_s"] / out["als"]["cpu_s"]
        print(json.dumps(out), flush=True)
    out["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # whole process, all runs
    print(json.dumps(out), flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
