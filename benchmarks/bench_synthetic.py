"""Does the built-in synthetic data set look like MovieLens-100K, and can the factors learn from it?

    .venv/bin/python benchmarks/bench_synthetic.py [--seeds 0,1,2,3,4] [--time-10m] [--ref REF] [--output FILE]

1. Shape: the rating histogram, mean, standard deviation, ratings per user and item, the share of ratings
   held by the top 10 % of items and of users and the Gini coefficients of those counts, for the real
   MovieLens-100K (``benchmarks/data/ml-100k/u.data``, see get_data.sh; skipped when absent) and for the
   built-in synthetic set (``prepare_ratings(None, seed=s)``: 100,000 ratings, 2,000 users x 1,515 items),
   both as read and after the k-core.
2. Learning: per data set, ``prepare_ratings`` (k-core ``min_entries=4``, 80/10/10 split, seed s), then
   biases-only (``prep.fit_biases``, clipped to the scale like the model's predictions), the default
   ``LatentFactorModel()`` (ALS) and ``LatentFactorModel(solver="sgd")``, fitted with
   ``fit(train, validation=validation)``; test RMSE, the gain over biases-only, the early-stopping step
   ``history_.best_step`` and the validation RMSE at step 1 and at the best step. When the model refits on
   train + validation (``refit``, the default since model.py's scikit-learn API), biases-only is fitted on
   train + validation too, so both see the same ratings.
3. ``--time-10m``: seconds for ``synthetic(200_000, 20_000, 10_000_000, seed=0)`` (the size of the 10 M
   benchmarks), best of two.

``--ref REF``: also the generator as it was at git revision ``REF`` ("before" rows in the learning table,
and in the timing).
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import DATA, ROOT, machine, table  # noqa: E402

ML100K = DATA / "ml-100k" / "u.data"


def top_share(counts: np.ndarray, fraction: float = 0.1) -> float:
    c = np.sort(counts[counts > 0])[::-1]
    return float(c[:max(1, int(round(len(c) * fraction)))].sum() / c.sum())


def gini(counts: np.ndarray) -> float:
    c = np.sort(counts[counts > 0]).astype(np.float64)
    n = len(c)
    return float((2 * np.arange(1, n + 1) - n - 1) @ c / (n * c.sum()))


def shape_stats(name: str, r) -> dict:
    v = r.values
    cu, ci = r.user_counts(), r.item_counts()
    row = {"data": name, "ratings": len(r), "users": int((cu > 0).sum()), "items": int((ci > 0).sum()),
           "mean": float(v.mean()), "std": float(v.std()),
           "per_user": float(cu[cu > 0].mean()), "per_item": float(ci[ci > 0].mean()),
           "top_items": top_share(ci), "top_users": top_share(cu), "gini_items": gini(ci), "gini_users": gini(cu)}
    for k in range(1, 6):
        row[f"h{k}"] = float((v == k).mean())
    return row


def fit(model, train, validation):
    """``fit(train, validation=validation)``; with the scikit-learn API the validation ratings go as the
    documented ``(X_val, y_val)`` pair of original ids."""
    if hasattr(model, "predict_indices"):
        pairs = np.column_stack([validation.user_ids[validation.users], validation.item_ids[validation.items]])
        return model.fit(train, validation=(pairs, validation.values))
    return model.fit(train, validation=validation)


def predict(model, r) -> np.ndarray:
    if hasattr(model, "predict_indices"):  # the scikit-learn API: predict takes original ids
        return model.predict_indices(r.users, r.items)
    return model.predict(r.users, r.items)


def rmse(pred: np.ndarray, r) -> float:
    return float(np.sqrt(np.mean((pred - r.values) ** 2)))


def learning(name: str, prepared) -> dict:
    from latentatlas.ratings.data import Ratings
    from latentatlas.ratings.model import LatentFactorModel
    from latentatlas.ratings.prep import fit_biases

    s = prepared.split
    lo, hi = float(prepared.ratings.values.min()), float(prepared.ratings.values.max())
    row = {"data": name}
    for solver in ("als", "sgd"):
        model = LatentFactorModel(solver=solver)
        t0 = time.perf_counter()
        fit(model, s.train, s.validation)
        row[f"{solver}_s"] = time.perf_counter() - t0
        row[solver] = rmse(predict(model, s.test), s.test)
        h = model.history_
        row[f"{solver}_best"] = h.best_step
        row[f"{solver}_steps"] = len(h.validation_rmse)
        row[f"{solver}_val1"] = h.validation_rmse[0]
        row[f"{solver}_valbest"] = h.validation_rmse[h.best_step - 1]
        refit = bool(getattr(model, "refit", False))
    fit_on = s.train
    if refit:
        fit_on = Ratings(np.concatenate([s.train.users, s.validation.users]),
                         np.concatenate([s.train.items, s.validation.items]),
                         np.concatenate([s.train.values, s.validation.values]), s.train.user_ids, s.train.item_ids)
    b = fit_biases(fit_on)
    row["biases"] = rmse(np.clip(b.predict(s.test.users, s.test.items), lo, hi), s.test)
    row["biases_val"] = rmse(np.clip(fit_biases(s.train).predict(s.validation.users, s.validation.items), lo, hi),
                             s.validation)
    row["refit"] = "yes" if refit else "no"
    for solver in ("als", "sgd"):
        row[f"{solver}_gain"] = row["biases"] - row[solver]
    return row


def time_10m(module) -> tuple[float, float]:
    """Best of two wall times, and the peak of numpy's allocations (tracemalloc) in a third, untimed run."""
    import tracemalloc

    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        r = module.synthetic(200_000, 20_000, 10_000_000, seed=0)
        best = min(best, time.perf_counter() - t0)
        del r
    tracemalloc.start()
    r = module.synthetic(200_000, 20_000, 10_000_000, seed=0)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    del r
    return best, peak


def loadavg() -> str:
    path = Path("/proc/loadavg")
    return " ".join(path.read_text().split()[:3]) if path.exists() else "?"


def module_at(ref: str, tmp: Path):
    src = subprocess.run(["git", "show", f"{ref}:src/latentatlas/ratings/synthetic.py"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    path = tmp / "synthetic_ref.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("synthetic_ref", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--time-10m", action="store_true")
    ap.add_argument("--ref", help="also measure the generator of this git revision")
    ap.add_argument("--output", default=str(Path(__file__).resolve().parent / "RESULTS-synthetic.md"))
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    load_start = loadavg()

    from latentatlas.ratings.io import read_ratings
    from latentatlas.ratings.pipeline import load_input, prepare_ratings

    shapes, learned = [], []
    if ML100K.exists():
        shapes.append(shape_stats("MovieLens-100K, as read", read_ratings(ML100K)))
        prepared = prepare_ratings(ML100K, quiet=True, seed=0)
        shapes.append(shape_stats("MovieLens-100K, k-core", prepared.ratings))
        learned.append(learning("MovieLens-100K (seed 0)", prepared))
        print(learned[-1], flush=True)
    else:
        print(f"{ML100K} is missing (bash benchmarks/get_data.sh): synthetic rows only", flush=True)
    for seed in seeds:
        shapes.append(shape_stats(f"built-in synthetic seed {seed}, as read", load_input(None, seed=seed)))
        prepared = prepare_ratings(None, quiet=True, seed=seed)
        shapes.append(shape_stats(f"built-in synthetic seed {seed}, k-core", prepared.ratings))
        learned.append(learning(f"built-in synthetic seed {seed}", prepared))
        print(learned[-1], flush=True)

    ref_module = None
    if args.ref:
        tmp = tempfile.TemporaryDirectory()
        ref_module = module_at(args.ref, Path(tmp.name))
        from latentatlas.ratings import pipeline

        current = pipeline.synthetic
        pipeline.synthetic = ref_module.synthetic  # load_input's generator, for the "before" rows
        try:
            shapes.append(shape_stats(f"before: git {args.ref} generator seed {seeds[0]}, as read",
                                      load_input(None, seed=seeds[0])))
            for seed in seeds:
                learned.append(learning(f"before: git {args.ref} generator, seed {seed}",
                                        prepare_ratings(None, quiet=True, seed=seed)))
                print(learned[-1], flush=True)
        finally:
            pipeline.synthetic = current

    timings = []
    if args.time_10m:
        import importlib

        timings.append(("working tree", time_10m(importlib.import_module("latentatlas.ratings.synthetic"))))
        if ref_module is not None:
            timings.append((f"git {args.ref}", time_10m(ref_module)))
        print(timings, flush=True)

    command = "nice .venv/bin/python benchmarks/bench_synthetic.py " + " ".join(sys.argv[1:])
    pct = "{:.1%}"
    out = [
        "# Synthetic ratings vs MovieLens-100K",
        "",
        f"Machine: {machine()}; load average (1, 5, 15 min) {load_start} at the start, {loadavg()} at the end "
        "(2 cores shared with other jobs: the timings are inflated, the RMSEs are not)",
        "",
        f"Command: `{command.strip()}`",
        "",
        "## Shape",
        "",
        table(shapes, [("data", "data", "{}"), ("ratings", "ratings", "{:,}"), ("users", "users", "{:,}"),
                       ("items", "items", "{:,}"), ("h1", "1★", pct), ("h2", "2★", pct), ("h3", "3★", pct),
                       ("h4", "4★", pct), ("h5", "5★", pct), ("mean", "mean", "{:.3f}"), ("std", "std", "{:.3f}"),
                       ("per_user", "per user", "{:.0f}"), ("per_item", "per item", "{:.0f}"),
                       ("top_items", "top 10 % items", pct), ("top_users", "top 10 % users", pct),
                       ("gini_items", "Gini items", "{:.2f}"), ("gini_users", "Gini users", "{:.2f}")]),
        "",
        "## Learning: default models vs biases-only (test RMSE, 80/10/10 split of the k-core)",
        "",
        table(learned, [("data", "data", "{}"), ("biases", "biases-only", "{:.4f}"), ("als", "ALS", "{:.4f}"),
                        ("als_gain", "ALS gain", "{:+.4f}"), ("als_best", "ALS best step", "{}"),
                        ("als_val1", "ALS val @1", "{:.4f}"), ("als_valbest", "ALS val @best", "{:.4f}"),
                        ("sgd", "SGD", "{:.4f}"), ("sgd_gain", "SGD gain", "{:+.4f}"),
                        ("sgd_best", "SGD best step", "{}"), ("sgd_val1", "SGD val @1", "{:.4f}"),
                        ("sgd_valbest", "SGD val @best", "{:.4f}"), ("biases_val", "biases-only val", "{:.4f}"),
                        ("refit", "refit", "{}")]),
        "",
        "gain = biases-only − model (positive: the factors help). val @1 / @best: validation RMSE after the "
        "first step and at the step early stopping kept; biases-only val is fitted on train alone.",
    ]
    if timings:
        out += ["", "## Generating 10 M ratings", "", "`synthetic(200_000, 20_000, 10_000_000, seed=0)`: wall seconds, best of two, and the "
                "peak of the allocations traced by tracemalloc (numpy's arrays; the result itself is 114 MiB):",
                ""] + [f"- {name}: {sec:.1f} s, peak {peak:.0f} MiB" for name, (sec, peak) in timings]
    Path(args.output).write_text("\n".join(out) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
