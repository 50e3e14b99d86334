"""How long does reading side-feature files of real sizes take, and what memory does it peak at?

Files are generated at the sizes of the real ones (seeded), each read with ``read_features`` in its own child
process (CPU time, wall time, peak RSS of the child), then aligned to a ratings-sized id array:

* a Yelp ``business.json`` of 150,346 businesses (the 2022 Open Dataset's count): categories from 1,300
  names, 1-10 each, 1,400 cities, 27 states, stars, review_count, nested attributes;
* an ml-32m ``movies.csv`` of 87,585 films (20 genres, a year in the title);
* a MovieLens ``u.user``-shaped file of 1,000,000 users (age, gender, 21 occupations, zip);
* a generic CSV of 1,000,000 items (a 3-valued multi-valued tag field, a categorical brand of 5,000 values,
  a price).

    .venv/bin/python benchmarks/bench_features_input.py            # writes benchmarks/RESULTS-features-input.md
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import HERE, emit, machine, run_child, table  # noqa: E402

WORK = Path(os.environ.get("BENCH_FEATURES_DIR", "/tmp/bench-features"))
GENRES = ["Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
          "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
          "(no genres listed)"]
OCCUPATIONS = ["administrator", "artist", "doctor", "educator", "engineer", "entertainment", "executive",
               "healthcare", "homemaker", "lawyer", "librarian", "marketing", "none", "other", "programmer",
               "retired", "salesman", "scientist", "student", "technician", "writer"]


#: The first version (commit 3cf15fe: per-cell Python loops), measured by this script on the same machine
#: earlier the same day (load average about 7): read CPU seconds, peak RSS MB.
FIRST_VERSION = {"Yelp business.json (150,346)": (4.85, 508), "ml-32m movies.csv (87,585)": (0.89, 175),
                 "u.user shape (1,000,000)": (11.37, 722), "generic CSV (1,000,000)": (14.74, 985)}


def make_files() -> dict[str, Path]:
    WORK.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    files = {}
    p = WORK / "business.json"
    if not p.exists():
        cats = [f"Category {k}" for k in range(1300)]
        with open(p, "w") as fh:
            for b in range(150_346):
                n = int(rng.integers(1, 11))
                rec = {"business_id": f"B{b:021d}", "name": f"Business {b}", "city": f"City {rng.integers(1400)}",
                       "state": f"S{rng.integers(27)}", "stars": float(rng.integers(2, 11)) / 2,
                       "review_count": int(rng.integers(5, 5000)), "is_open": int(rng.integers(2)),
                       "attributes": {"WiFi": "free"},
                       "categories": ", ".join(cats[c] for c in rng.choice(1300, n, replace=False))}
                fh.write(json.dumps(rec) + "\n")
    files["Yelp business.json (150,346)"] = p
    p = WORK / "movies.csv"
    if not p.exists():
        with open(p, "w") as fh:
            fh.write("movieId,title,genres\n")
            for m in range(87_585):
                g = "|".join(GENRES[c] for c in sorted(rng.choice(19, int(rng.integers(1, 4)), replace=False)))
                fh.write(f'{m + 1},"Film {m}, The ({rng.integers(1900, 2024)})",{g}\n')
    files["ml-32m movies.csv (87,585)"] = p
    p = WORK / "u.user"
    if not p.exists():
        with open(p, "w") as fh:
            for u in range(1_000_000):
                fh.write(f"{u + 1}|{rng.integers(7, 80)}|{'MF'[rng.integers(2)]}|{OCCUPATIONS[rng.integers(21)]}|"
                         f"{rng.integers(10000, 99999)}\n")
    files["u.user shape (1,000,000)"] = p
    p = WORK / "items.csv"
    if not p.exists():
        with open(p, "w") as fh:
            fh.write("item_id,tags,brand,price\n")
            for i in range(1_000_000):
                tags = "|".join(f"t{t}" for t in rng.choice(200, 3, replace=False))
                fh.write(f"{i},{tags},brand{rng.integers(5000)},{rng.integers(100, 100000) / 100}\n")
    files["generic CSV (1,000,000)"] = p
    return files


def child(path: str) -> None:
    from latentatlas.ratings.io.features import read_features

    t0, c0 = time.perf_counter(), time.process_time()
    f = read_features(path)
    read_cpu, read_wall = time.process_time() - c0, time.perf_counter() - t0
    ids = np.random.default_rng(1).choice(f.ids, size=min(len(f), 100_000), replace=False)
    c0 = time.process_time()
    m = f.aligned(ids)
    align_cpu = time.process_time() - c0
    emit({"rows": len(f), "columns": f.n_columns, "groups": len(f.group_names), "nnz": int(f.matrix.nnz),
          "read_cpu_s": read_cpu, "read_wall_s": read_wall, "align_cpu_s": align_cpu, "aligned_rows": m.shape[0],
          "file_mb": os.path.getsize(path) / 2**20})


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2])
        return
    files = make_files()
    rows = []
    for label, path in files.items():
        res = run_child([sys.executable, __file__, "--child", str(path)], label=label)
        res["file"] = label
        res["before_cpu_s"], res["before_rss_mb"] = FIRST_VERSION.get(label, (None, None))
        rows.append(res)
        print(label, {k: res.get(k) for k in ("read_cpu_s", "read_wall_s", "peak_rss_mb", "columns")}, flush=True)
    load = os.getloadavg()
    out = [
        "# Reading side-feature files (issue 16)",
        "",
        "Each file read by `read_features` (format detected, no options) in a fresh child process; then its",
        "features aligned to 100,000 of its ids in a random order (what the model does with the ratings' ids).",
        "CPU seconds are the child's own (`time.process_time`), the fair figure on a shared machine.",
        "",
        "```bash",
        ".venv/bin/python benchmarks/bench_features_input.py",
        "```",
        "",
        f"Machine: {machine()}; load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15 min; the",
        "machine is shared by several engineers, so wall times are noisy).",
        "",
        table(rows, [("file", "file", "{}"), ("file_mb", "MB", "{:.1f}"), ("rows", "ids", "{:,}"),
                     ("groups", "groups", "{:,}"), ("columns", "columns", "{:,}"), ("nnz", "entries", "{:,}"),
                     ("read_cpu_s", "read, CPU s", "{:.2f}"), ("before_cpu_s", "first version, CPU s", "{:.2f}"),
                     ("read_wall_s", "read, wall s", "{:.2f}"), ("align_cpu_s", "align 100k, CPU s", "{:.3f}"),
                     ("peak_rss_mb", "peak RSS MB", "{:.0f}"), ("before_rss_mb", "first version, MB", "{:.0f}")]),
        "",
        "The first version encoded each cell in a Python loop; the encoding now runs in Arrow's compute kernels",
        "(split, trim, dictionary-encode) and NumPy, the ids are typed by Arrow as the ratings readers type them,",
        "and a Yelp file keeps only the fields it uses while it is read (in the real file the nested attributes and",
        "hours, which the generated one barely has). Peak RSS includes the interpreter with pandas, pyarrow and",
        "SciPy loaded (117 MB).",
        "",
    ]
    (HERE / "RESULTS-features-input.md").write_text("\n".join(out) + "\n", encoding="utf-8")
    print(f"wrote {HERE / 'RESULTS-features-input.md'}")


if __name__ == "__main__":
    main()
