"""How LatentFactorModel's defaults were chosen: test RMSE on MovieLens-100K random 80/20 splits.

    benchmarks/get_data.sh   # once: MovieLens-100K into benchmarks/data/ml-100k/
    .venv/bin/python benchmarks/tune_model_defaults.py [--seeds 0,1] [--output benchmarks/RESULTS-model-defaults.md]

Protocol (what `latentatlas ratings train --train … --test …` does): 80/20 random split of all ratings
(seeded); 10 % of the training part held out for early stopping; then a refit on the whole training part
for the chosen number of steps; RMSE on the 20 %. Each row is the mean over the seeds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import DATA, ROOT, machine, table  # noqa: E402

TEXTBOOK = dict(k=100, reg=1e-4, center="user", reg_weighting="none", init_scale=1.0, stop_on="loss")


def grid() -> list[tuple[str, dict]]:
    rows = [("textbook: k=100, λ=1e-4, user means, plain penalty, U[0,1) init, stop on loss", TEXTBOOK)]
    rows += [(f"als k={k} λ={reg}", dict(k=k, reg=reg)) for k in (32, 64, 128) for reg in (0.08, 0.12, 0.16)]
    rows += [(f"als k=64 λ={reg} plain penalty", dict(k=64, reg=reg, reg_weighting="none")) for reg in (6.0, 12.0)]
    rows += [(f"sgd k={k} λ={reg} lr={lr}", dict(solver="sgd", k=k, reg=reg, lr=lr))
             for k in (64, 128) for reg in (0.05, 0.065, 0.08, 0.1) for lr in (0.02,)]
    rows += [("sgd k=64 λ=0.065 lr=0.01", dict(solver="sgd", k=64, reg=0.065, lr=0.01))]
    rows += [("defaults (als)", {}), ("defaults (sgd)", dict(solver="sgd"))]
    return rows


def main() -> None:
    from latentatlas.ratings import prep
    from latentatlas.ratings.io import read_ratings
    from latentatlas.ratings.model import LatentFactorModel

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--output", default=str(ROOT / "benchmarks" / "RESULTS-model-defaults.md"))
    args = ap.parse_args()
    path = DATA / "ml-100k" / "u.data"
    if not path.exists():
        raise SystemExit(f"{path} not found; run benchmarks/get_data.sh first")
    ratings = read_ratings(path)
    seeds = [int(s) for s in args.seeds.split(",")]
    results: dict[str, list] = {}
    for seed in seeds:
        s = prep.split(ratings, test_fraction=0.2, seed=seed)
        inner = prep.split(s.train, validation_fraction=0.1, seed=seed + 1)
        test = s.test
        means = prep.user_means(s.train)
        results.setdefault("predict each user's mean", []).append(
            (float(np.sqrt(np.mean((means[test.users] - test.values) ** 2))), None))
        b = prep.fit_biases(s.train)
        pred = np.clip(b.predict(test.users, test.items), 1, 5)
        results.setdefault("biases only (μ + b_u + b_i, damped)", []).append(
            (float(np.sqrt(np.mean((pred - test.values) ** 2))), None))
        for name, kw in grid():
            m = LatentFactorModel(seed=seed, **kw).fit(inner.train, inner.validation, refit=True)
            err = float(np.sqrt(np.mean((m.predict(test.users, test.items) - test.values) ** 2)))
            results.setdefault(name, []).append((err, m.history_.best_step))
            print(f"seed {seed}  {name:70s} {err:.4f}", flush=True)
    rows = [{"config": name, "rmse": float(np.mean([v[0] for v in vals])),
             "steps": ("–" if vals[0][1] is None else "/".join(str(v[1]) for v in vals))}
            for name, vals in results.items()]
    text = "\n".join([
        "# Choosing the defaults: MovieLens-100K test RMSE", "",
        f"Machine: {machine()}", "",
        f"Command: `.venv/bin/python benchmarks/tune_model_defaults.py --seeds {args.seeds}`", "",
        "Random 80/20 split per seed; 10 % of the training part for early stopping, then a refit on all of it "
        "for the chosen number of steps (`steps`: per seed). λ is per rating (count-weighted) unless "
        "'plain penalty'. Biases: damped means with pseudo-count 5.", "",
        table(rows, [("config", "configuration", "{}"), ("rmse", "test RMSE (mean)", "{:.4f}"),
                     ("steps", "steps chosen", "{}")]), ""])
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
