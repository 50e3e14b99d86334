"""Test RMSE of LatentFactorModel(solver="sgd") at its defaults on MovieLens-100K, over seeded 80/10/10 splits.

    .venv/bin/python benchmarks/bench_sgd_ml100k.py [--seeds 0-9]

Each seed splits benchmarks/data/ml-100k/u.data (benchmarks/get_data.sh) 80/10/10 (prep.split), fits with
early stopping on the validation part (seed = the split's seed) and prints the test RMSE (clipped predictions).
To compare with an older version of the code, run the same command with ``PYTHONPATH`` pointing at an export
of that version's ``src`` (``git archive <commit> src | tar -x -C DIR``) and another ``NUMBA_CACHE_DIR``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ML = Path(__file__).resolve().parent / "data" / "ml-100k" / "u.data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0-9")
    args = ap.parse_args()
    lo, _, hi = args.seeds.partition("-")
    seeds = range(int(lo), int(hi or lo) + 1)
    from latentatlas.ratings import prep
    from latentatlas.ratings.io import read_ratings
    from latentatlas.ratings.model import LatentFactorModel

    r = read_ratings(ML)
    out = {}
    for seed in seeds:
        s = prep.split(r, validation_fraction=0.1, test_fraction=0.1, seed=seed)
        m = LatentFactorModel(solver="sgd", seed=seed).fit(s.train, validation=s.validation)
        p = m.predict_indices(s.test.users, s.test.items)
        out[seed] = round(float(np.sqrt(np.mean((p - s.test.values) ** 2))), 4)
    print(json.dumps({"test_rmse": out, "mean": round(float(np.mean(list(out.values()))), 4)}))


if __name__ == "__main__":
    main()
