"""Question: on MovieLens-100K validation data, do side features (the ml-100k.item genres and release year, the
ml-100k.user age, gender, occupation, zip code) and time-aware biases lower the RMSE of the Bayesian rating
model, and which should be on by default (issue 16)?

Every figure is a *validation* RMSE: ``LatentFactorModel(solver="bayes")`` at its defaults (plus the option in
the row) is fitted on the training part and scored on the validation part of each split from
``benchmarks/datasets.py`` (random 80/10/10 with seeds 0-2; time-ordered oldest 80 % / next 10 %; a 30 %
per-user subsample, random 80/10/10). The test parts are not touched. Ids are the files' original ids, so a
validation pair whose user or item has no training rating is predicted from the known part of the baseline —
or, with features, from the features (cold start). Predictions are clipped to 1-5 (the model's default).

Usage: nice .venv/bin/python benchmarks/bench_bayes_side.py [--seeds 0 1 2] [--configs base item ...]
           [--out benchmarks/results/bayes_side.json]   (needs ``bash benchmarks/get_data.sh``)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

CONFIGS = {
    "base": {},
    "item": {"item": None},
    "user": {"user": ["age", "gender", "occupation"]},
    "user+zip": {"user": None},
    "both": {"item": None, "user": ["age", "gender", "occupation"]},
    "time": {"time": True},
    "both+time": {"item": None, "user": ["age", "gender", "occupation"], "time": True},
}


def features():
    from latentatlas.ratings.io.features import read_features

    data = HERE / "data" / "ml-100k"
    return read_features(data / "ml-100k.item", kind="item"), read_features(data / "ml-100k.user", kind="user")


def ratings_of(rs, idx):
    from latentatlas.ratings.data import Ratings

    ts = None if rs.timestamps is None else rs.timestamps[idx].astype(np.float64)
    return Ratings.from_arrays(rs.user_ids[rs.users[idx]], rs.item_ids[rs.items[idx]], rs.ratings[idx], timestamps=ts)


def run(scenario, rs, parts, config, item_f, user_f, seed=0) -> dict:
    from latentatlas.ratings.model import LatentFactorModel

    spec = CONFIGS[config]
    train, val = ratings_of(rs, parts[0]), ratings_of(rs, parts[1])
    kw = {}
    if "item" in spec:
        kw["item_features"] = item_f if spec["item"] is None else item_f.select(spec["item"])
    if "user" in spec:
        kw["user_features"] = user_f if spec["user"] is None else user_f.select(spec["user"])
    model = LatentFactorModel(solver="bayes", seed=seed, time_bias=bool(spec.get("time")))
    c0, w0 = time.process_time(), time.perf_counter()
    model.fit(train, **kw)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    pred = model.predict(val)  # Ratings: its timestamps go to the time biases
    rmse = float(np.sqrt(np.mean((pred - val.values) ** 2)))
    known_u = np.isin(val.user_ids[val.users], train.user_ids)
    known_i = np.isin(val.item_ids[val.items], train.item_ids)
    cold = ~(known_u & known_i)
    cold_rmse = float(np.sqrt(np.mean((pred[cold] - val.values[cold]) ** 2))) if cold.any() else float("nan")
    return {"scenario": scenario, "config": config, "seed": seed, "validation_rmse": round(rmse, 4),
            "n_validation": len(val), "n_cold_pairs": int(cold.sum()), "cold_rmse": round(cold_rmse, 4),
            "cpu_s": round(cpu, 1), "wall_s": round(wall, 1)}


def main(argv=None) -> None:
    import datasets as D

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS))
    ap.add_argument("--scenarios", nargs="+", default=["random", "time", "sparse30"])
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    item_f, user_f = features()
    rs = D.ml100k()
    jobs = []
    if "random" in args.scenarios:
        jobs += [(f"ml100k/random seed {s}", rs, D.random_split(len(rs), s)) for s in args.seeds]
    if "time" in args.scenarios:
        jobs.append(("ml100k/time", rs, D.time_split(rs.timestamps)))
    if "sparse30" in args.scenarios:
        sub = rs.take(D.subsample_per_user(rs.users, 0.3, 0), name="ml100k-30%")
        jobs.append(("ml100k/sparse30", sub, D.random_split(len(sub), 0)))
    rows = []
    meta = {"load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": f"{os.cpu_count()} cpus"}
    for scenario, data, parts in jobs:
        for config in args.configs:
            rows.append(run(scenario, data, parts, config, item_f, user_f))
            print(json.dumps(rows[-1]), flush=True)
            if args.out:
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    meta["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    if args.out:
        Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
