"""Model file sizes on MovieLens-100K (issue 16, "compact models"): ALS at k = 24 and 64 and the Bayesian model
at k = 24, each saved with the item names of MovieLens-100K, and what each part of the file takes.

The names come from RecBole's ``ml-100k.item`` (title, release year, genres), the same wheel that
``get_data.sh`` takes the ratings from: pass its path with ``--items`` (without it, the models are saved
without names). Training: a seeded 80/20 split (seed 0), defaults otherwise; test RMSE and the mean predictive
standard deviation are printed beside the sizes so that a change of storage can be checked not to change the
answers.

Usage: .venv/bin/python benchmarks/bench_model_size.py [--items PATH/ml-100k.item] [--json OUT.json]
(needs ``bash benchmarks/get_data.sh``). Run it with ``PYTHONPATH`` pointing at an older checkout's ``src`` to
measure that version: it uses only ``LatentFactorModel``, ``Names`` and ``save``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def item_names(path: Path):
    """``Names`` of RecBole's ml-100k.item (tab separated, a typed header: item_id, movie_title, release_year,
    class)."""
    from latentatlas.ratings.names import Names

    ids, titles, genres = [], [], []
    with open(path, encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            cols = line.rstrip("\n").split("\t")
            ids.append(int(cols[0]))
            titles.append(f"{cols[1]} ({cols[2]})" if len(cols) > 2 and cols[2] else cols[1])
            genres.append("|".join(cols[3].split()) if len(cols) > 3 else "")
    return Names(np.array(ids), np.array(titles), {"genres": np.array(genres)}, {"source": str(path)})


def text_bytes(names) -> int:
    """The UTF-8 size of the names' text (names and text columns; ids and numeric columns at their binary
    size): what the stored names are compared with."""
    total = sum(len(s.encode("utf-8")) for s in names.names.tolist())
    for arr in (names.ids, *names.metadata.values()):
        total += sum(len(s.encode("utf-8")) for s in arr.tolist()) if arr.dtype.kind == "U" else arr.nbytes
    return total


def parts(path: Path) -> dict:
    """Bytes per part of a model file (sizes inside the zip, stored uncompressed)."""
    out = {"names": 0, "bayes": 0, "factors": 0, "other": 0}
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            name = info.filename
            key = "names" if "_names_" in name and not name.endswith("meta.npy") else \
                "bayes" if name.startswith("bayes_") else \
                "factors" if name.startswith(("user_factors", "item_factors")) else "other"
            out[key] += info.file_size
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=Path, default=None, help="RecBole's ml-100k.item (item names)")
    ap.add_argument("--json", type=Path, default=None, help="write the numbers here too")
    args = ap.parse_args()
    from latentatlas.ratings import prep
    from latentatlas.ratings.io import read_ratings
    from latentatlas.ratings.model import LatentFactorModel

    data = HERE / "data" / "ml-100k" / "u.data"
    if not data.exists():
        sys.exit("run `bash benchmarks/get_data.sh` first")
    split = prep.split(read_ratings(data), validation_fraction=0.0, test_fraction=0.2, seed=0)
    test = split.test
    X = np.stack([test.user_ids[test.users], test.item_ids[test.items]], axis=1)
    names = item_names(args.items) if args.items else None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, kw in (("als k=24", dict(k=24)), ("als k=64", dict(k=64)), ("bayes k=24", dict(solver="bayes", k=24))):
            start = time.perf_counter()
            model = LatentFactorModel(seed=0, **kw).fit(split.train)
            seconds = time.perf_counter() - start
            if names is not None:
                model.set_names(items=names)
            path = Path(tmp) / f"{label.replace(' ', '_').replace('=', '')}.npz"
            model.save(path)
            back = LatentFactorModel.load(path)
            pred = back.predict(X)
            row = {"model": label, "bytes": path.stat().st_size, **parts(path),
                   "test_rmse": float(np.sqrt(np.mean((pred - test.values) ** 2))), "fit_seconds": round(seconds, 1)}
            if kw.get("solver") == "bayes":
                _, std = back.predict(X, return_std=True)
                row["mean_std"] = float(np.mean(std))
                row["same_after_load"] = bool(np.array_equal(pred, model.predict(X)))
            rows.append(row)
            print(json.dumps(row), flush=True)
    summary = {"rows": rows}
    if names is not None:
        summary["names_utf8_bytes"] = text_bytes(names)
        summary["names_stored_bytes"] = rows[0]["names"]
        summary["names_ratio"] = rows[0]["names"] / summary["names_utf8_bytes"]
    summary["bayes_over_als_same_k"] = rows[2]["bytes"] / rows[0]["bytes"]
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
