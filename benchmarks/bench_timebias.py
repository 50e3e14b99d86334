"""Time-aware biases (TimeBiases, issue 16): do they help, with which n_bins and drift exponent, and what a sweep costs.

    .venv/bin/python benchmarks/bench_timebias.py --validate [--leave-last-out 5 | --split global] [--chains 3]
    .venv/bin/python benchmarks/bench_timebias.py --bayes [--leave-last-out 5 | --split global] [--chains 5]
    .venv/bin/python benchmarks/bench_timebias.py --speed [--als]

``--validate``: MovieLens-100K (benchmarks/get_data.sh) split per user by time (``split(leave_last_out=K)``: each
user's K latest ratings are test, the K before them validation; only train and validation are used here). A
biases-only Bayesian model, ``y = μ + b_u + b_i [+ time offset] + ε``, fitted by a small Gibbs loop in this
script (flat prior on μ, N(0, 1/λ) on the biases, Gamma(1, 1) on λ_user, λ_item and the noise precision α, the
same hyper-priors as ratings/bayes.py), with and without the TimeBiases block, over a grid of ``n_bins`` and
drift exponents, ``--chains`` chain seeds each. Prints validation RMSE (of the posterior-mean prediction, not
clipped) as Markdown rows. Ablations: bins only (λ_drift fixed at 1e12, so a_u ≈ 0) and drift only (n_bins=1,
where the bin term is a second item bias).

``--bayes``: the full Bayesian model (``gibbs_fit`` defaults: k = 24, 50 samples after 10, implicit features)
with and without ``time_bias`` on the same split, one fit per seed (``--chains``), validation RMSE of
``BayesFit.predict`` (with the validation times); ``--bayes-exponent`` sets the drift exponent for it.

``--speed``: one Gibbs step (``sample`` + ``offsets``) on bench_kernels.py's 10 M synthetic ratings (200 000
users × 20 000 items; ``--n`` uniform ones when that file is absent) with times drawn over three years and 30
bins, with a scalar and with a per-rating precision, through the numba kernels and through the np.bincount
version they replaced (interleaved): median CPU seconds per sweep, and the setup cost. ``--als`` adds an ALS
iteration (k = 64, the defaults) on the same ratings, the yardstick of the issue.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from _harness import machine  # noqa: E402

from latentatlas.ratings.timebias import DAY, DEFAULT_EXPONENT, TimeBiases  # noqa: E402

ML100K = HERE / "data" / "ml-100k" / "u.data"


def load_split(k: int, kind: str = "last"):
    """ML-100K and a time-ordered split of it: ``last`` = per user (``split(leave_last_out=k)``), ``global`` =
    one cut in time (datasets.time_split: oldest 80 % train, next 10 % validation, newest 10 % test)."""
    from latentatlas.ratings.io import read_ratings
    from latentatlas.ratings.prep import Split, split

    if not ML100K.exists():
        sys.exit(f"{ML100K} is missing: run bash benchmarks/get_data.sh")
    ratings = read_ratings(ML100K)
    if kind == "global":
        from datasets import time_split

        train, val, test = time_split(ratings.timestamps)
        return ratings, Split(ratings.take(train), ratings.take(val), ratings.take(test))
    return ratings, split(ratings, leave_last_out=k)


def split_name(args) -> str:
    return (f"ML-100K leave_last_out={args.leave_last_out}" if args.split == "last" else
            "ML-100K global time split (oldest 80 % train, next 10 % validation)")


def gibbs_biases(train, n_users, n_items, val, *, time_kw=None, seed=0, n_sweeps=300, burn_in=50, clip=False):
    """Posterior-mean validation predictions of μ + b_u + b_i (+ TimeBiases with ``time_kw``)."""
    rng = np.random.default_rng(seed)
    u, i, y, t = train
    n = len(y)
    cnt_u = np.bincount(u, minlength=n_users)
    cnt_i = np.bincount(i, minlength=n_items)
    mu, bu, bi = float(y.mean()), np.zeros(n_users), np.zeros(n_items)
    lam_u = lam_i = alpha = 1.0
    tb = TimeBiases.setup(u, i, t, n_users, n_items, **time_kw) if time_kw is not None else None
    off = np.zeros(n)
    sums = [0.0, np.zeros(n_users), np.zeros(n_items)]
    kept = 0
    for s in range(n_sweeps):
        r = y - bu[u] - bi[i] - off
        mu = rng.normal(r.mean(), 1 / np.sqrt(alpha * n))
        r = y - mu - bi[i] - off
        prec = lam_u + alpha * cnt_u
        bu = alpha * np.bincount(u, weights=r, minlength=n_users) / prec + rng.standard_normal(n_users) / np.sqrt(prec)
        r = y - mu - bu[u] - off
        prec = lam_i + alpha * cnt_i
        bi = alpha * np.bincount(i, weights=r, minlength=n_items) / prec + rng.standard_normal(n_items) / np.sqrt(prec)
        if tb is not None:
            tb.sample(y - mu - bu[u] - bi[i], alpha, rng)
            off = tb.offsets()
        lam_u = rng.gamma(1 + n_users / 2, 1 / (1 + bu @ bu / 2))
        lam_i = rng.gamma(1 + n_items / 2, 1 / (1 + bi @ bi / 2))
        e = y - mu - bu[u] - bi[i] - off
        alpha = rng.gamma(1 + n / 2, 1 / (1 + e @ e / 2))
        if s >= burn_in:
            sums[0] += mu
            sums[1] += bu
            sums[2] += bi
            kept += 1
            if tb is not None:
                tb.keep()
    vu, vi, vy, vt = val
    pred = sums[0] / kept + sums[1][vu] / kept + sums[2][vi] / kept
    if tb is not None:
        offset = tb.predict(vu, vi, vt)
        if clip:  # the drift held inside the user's range of training deviations (no extrapolation)
            dev, train_dev = tb.deviation(vu, vt), tb.deviation(u, t)
            lo, hi = np.zeros(n_users), np.zeros(n_users)
            np.minimum.at(lo, u, train_dev)
            np.maximum.at(hi, u, train_dev)
            offset += tb.user_drift[vu] * (np.clip(dev, lo[vu], hi[vu]) - dev)
        pred = pred + offset
    return float(np.sqrt(np.mean((pred - vy) ** 2)))


def validate(args) -> None:
    ratings, sp = load_split(args.leave_last_out, args.split)
    tr, va = sp.train, sp.validation
    train = (tr.users.astype(np.intp), tr.items.astype(np.intp), tr.values.astype(np.float64), tr.timestamps)
    val = (va.users.astype(np.intp), va.items.astype(np.intp), va.values.astype(np.float64), va.timestamps)
    nu, ni = len(ratings.user_ids), len(ratings.item_ids)
    print(f"<!-- {machine()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} -->")
    print(f"{split_name(args)}: {len(tr.values)} train, {len(va.values)} validation "
          f"ratings; {args.chains} chains × {args.sweeps} sweeps (burn-in {args.burn_in}) each\n")
    print("| model | n_bins | exponent | validation RMSE (mean of chains) | − no-time RMSE | chains |")
    print("|---|---:|---:|---:|---:|---|")

    def row(name, kw, nb="–", ex="–", clip=False):
        start = time.process_time()
        rmses = [gibbs_biases(train, nu, ni, val, time_kw=kw, seed=c, n_sweeps=args.sweeps, burn_in=args.burn_in,
                              clip=clip)
                 for c in range(args.chains)]
        m = float(np.mean(rmses))
        d = "–" if base is None else f"{m - base:+.4f}"
        print(f"| {name} | {nb} | {ex} | {m:.4f} | {d} | {' '.join(f'{x:.4f}' for x in rmses)} "
              f"({time.process_time() - start:.0f} CPU s) |", flush=True)
        return m

    base = None
    base = row("biases, no time", None)
    for nb in args.bins:
        for ex in args.exponents:
            row("biases + time", {"n_bins": nb, "exponent": ex}, nb, ex)
            if args.clip:
                row("biases + time, drift clipped to the user's training range", {"n_bins": nb, "exponent": ex},
                    nb, ex, clip=True)
    nb0, ex0 = args.bins_default, args.exponent_default
    row("biases + bins only (λ_drift fixed 1e12)", {"n_bins": nb0, "exponent": ex0, "lam_drift": 1e12}, nb0, ex0)
    row("biases + drift only (n_bins=1)", {"n_bins": 1, "exponent": ex0}, 1, ex0)


def bayes(args) -> None:
    """The full Bayesian model (gibbs_fit defaults) with and without time_bias on the same split."""
    from latentatlas.ratings.bayes import gibbs_fit

    ratings, sp = load_split(args.leave_last_out, args.split)
    tr, va = sp.train, sp.validation
    nu, ni = len(ratings.user_ids), len(ratings.item_ids)
    exponent = DEFAULT_EXPONENT
    if args.bayes_exponent is not None:  # gibbs_fit has no exponent argument: set the block's default here
        exponent = args.bayes_exponent
        setup = TimeBiases.setup.__func__
        TimeBiases.setup = classmethod(lambda cls, *a, **kw: setup(cls, *a, **{"exponent": exponent, **kw}))
    vu, vi, vv, vt = va.users, va.items, va.values.astype(np.float64), va.timestamps
    print(f"<!-- {machine()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} -->")
    print(f"{split_name(args)}: {len(tr.values)} train, {len(vv)} validation ratings; "
          f"gibbs_fit defaults, seeds 0..{args.chains - 1}\n")
    print("| model | validation RMSE per seed | mean | − no-time mean | CPU s (all seeds) |")
    print("|---|---|---:|---:|---:|")
    base = None
    for time_bias in (False, True):
        c0 = time.process_time()
        rmses = []
        for seed in range(args.chains):
            fit = gibbs_fit(tr.users, tr.items, tr.values, nu, ni, seed=seed, times=tr.timestamps,
                            time_bias=time_bias, **({"time_bins": args.bins_default} if time_bias else {}))
            pred = fit.predict(vu, vi, vt if time_bias else None)
            rmses.append(float(np.sqrt(np.mean((pred - vv) ** 2))))
        m = float(np.mean(rmses))
        base = m if base is None else base
        name = f"Bayes MF + time (n_bins={args.bins_default}, exponent {exponent})" if time_bias \
            else "Bayes MF, no time"
        print(f"| {name} | {' '.join(f'{x:.4f}' for x in rmses)} | {m:.4f} | "
              f"{'–' if not time_bias else f'{m - base:+.4f}'} | {time.process_time() - c0:.0f} |", flush=True)


def numpy_sweep(tb, r, p, rng, cell, users):
    """The same Gibbs step with np.bincount instead of the numba kernels (the first version of the block, which
    kept ``cell`` and ``users`` as intp arrays, as passed here)."""
    dev = tb._train["dev"]
    n_cells = len(tb._bflat)
    target = r - tb.a[users] * dev
    if np.ndim(p) == 0:
        sp = p * np.bincount(cell, minlength=n_cells)
        spr = p * np.bincount(cell, weights=target, minlength=n_cells)
    else:
        sp = np.bincount(cell, weights=p, minlength=n_cells)
        spr = np.bincount(cell, weights=p * target, minlength=n_cells)
    prec = tb.lam_bin + sp
    tb._bflat[:] = spr / prec + rng.standard_normal(n_cells) / np.sqrt(prec)
    tb._bflat[-1] = 0.0
    target = r - tb._bflat[cell]
    if np.ndim(p) == 0:
        sp = p * np.bincount(users, weights=dev * dev, minlength=tb.n_users)
        spr = p * np.bincount(users, weights=dev * target, minlength=tb.n_users)
    else:
        pd = p * dev
        sp = np.bincount(users, weights=pd * dev, minlength=tb.n_users)
        spr = np.bincount(users, weights=pd * target, minlength=tb.n_users)
    prec = tb.lam_drift + sp
    tb.a = spr / prec + rng.standard_normal(tb.n_users) / np.sqrt(prec)
    return tb._bflat[cell] + tb.a[users] * dev


def speed(args) -> None:
    from latentatlas.ratings.data import Ratings

    data = HERE / "data" / "kernels_10M.npz"
    if data.exists():  # the 10M set of bench_kernels.py (synthetic 200 000 users x 20 000 items)
        train = Ratings.load(data)
        users, items, nu, ni = train.users, train.items, len(train.user_ids), len(train.item_ids)
    else:
        train = None
        rng = np.random.default_rng(0)
        nu, ni = 200_000, 20_000
        users, items = rng.integers(0, nu, args.n), rng.integers(0, ni, args.n)
    n = len(users)
    rng = np.random.default_rng(0)
    times = 1.2e9 + rng.uniform(0, 3 * 365, n) * DAY
    y = rng.normal(0, 1, n)
    print(f"<!-- {machine()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} -->")
    c0, w0 = time.process_time(), time.perf_counter()
    tb = TimeBiases.setup(users, items, times, nu, ni, n_bins=30)
    print(f"- setup on {n:,} ratings ({nu:,} users, {ni:,} items, {tb.n_bins} bins): "
          f"{time.process_time() - c0:.2f} CPU s ({time.perf_counter() - w0:.2f} s wall); it keeps "
          f"{sum(v.nbytes for v in tb._train.values()) / 2**20:.0f} MiB of per-rating arrays")
    g = np.random.default_rng(1)
    tb.sample(y, 1.0, g)  # compiles the kernels (cached on disk afterwards)
    results = {}
    cell64, users64 = tb._train["cell"].astype(np.intp), tb._train["users"].astype(np.intp)
    for rep in range(args.repeats):  # interleaved, so that load changes hit every variant alike
        for label, prec in (("scalar", 1.0), ("per-rating", np.full(n, 1.0))):
            for impl in ("numba kernels", "numpy bincount"):
                c0, w0 = time.process_time(), time.perf_counter()
                if impl == "numba kernels":
                    tb.sample(y, prec, g)
                    tb.offsets()
                else:
                    numpy_sweep(tb, y, prec, g, cell64, users64)
                results.setdefault((impl, label), []).append((time.process_time() - c0, time.perf_counter() - w0))
    for (impl, label), v in results.items():
        v = np.array(v)
        print(f"- sweep (sample + offsets), {impl}, {label} precision: median {np.median(v[:, 0]):.3f} CPU s "
              f"({np.median(v[:, 1]):.3f} s wall) over {args.repeats}", flush=True)
    if args.als and train is not None:
        from latentatlas.ratings.model import LatentFactorModel

        steps = 3
        m = LatentFactorModel(k=64, solver="als", max_steps=steps, patience=steps + 1, eval_every=steps,
                              n_threads=2, validation_fraction=0)
        m.fit(train)
        print(f"- ALS iteration on the same ratings (k = 64, 2 threads, als:cg default): median "
              f"{np.median(m.history_.cpu_seconds):.3f} CPU s ({np.median(m.history_.seconds):.3f} s wall) "
              f"over {steps}")
    print(f"- load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--validate", action="store_true")
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--bayes", action="store_true", help="the full Bayesian model with and without time_bias")
    ap.add_argument("--leave-last-out", type=int, default=5)
    ap.add_argument("--split", choices=("last", "global"), default="last",
                    help="per-user leave-last-out (default) or one global cut in time")
    ap.add_argument("--chains", type=int, default=3)
    ap.add_argument("--sweeps", type=int, default=300)
    ap.add_argument("--burn-in", type=int, default=50)
    ap.add_argument("--bins", type=lambda s: [int(x) for x in s.split(",")], default=[5, 10, 20, 30, 50, 80])
    ap.add_argument("--exponents", type=lambda s: [float(x) for x in s.split(",")], default=[0.2, 0.4, 0.6])
    ap.add_argument("--clip", action="store_true", help="also rows with the drift clipped at prediction")
    ap.add_argument("--bayes-exponent", type=float, default=None, help="with --bayes: the drift exponent")
    ap.add_argument("--bins-default", type=int, default=30)
    ap.add_argument("--exponent-default", type=float, default=0.4)
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--als", action="store_true", help="with --speed: also time an ALS iteration (k = 64)")
    args = ap.parse_args()
    if args.speed:
        speed(args)
    if args.validate:
        validate(args)
    if args.bayes:
        bayes(args)
    if not (args.speed or args.validate or args.bayes):
        ap.error("give --validate, --bayes and/or --speed")


if __name__ == "__main__":
    main()
