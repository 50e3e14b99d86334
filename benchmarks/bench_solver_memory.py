"""Peak memory of the whole process: LatentFactorModel (ALS, SGD) fitted on 10 M ratings beside implicit's ALS.

    .venv/bin/python benchmarks/bench_solver_memory.py [--jobs ...] [--steps 3] [--output FILE]

Data: the synthetic 10 M-rating set of benchmarks/bench_kernels.py (200 000 users x 20 000 items, written once
to benchmarks/data/kernels_10M.npz), k = 64, 2 threads. Every job runs in its own process
(benchmarks/_harness.py); its peak is the larger of ``ru_maxrss`` and the RSS of its process tree sampled
every 50 ms, so the interpreter, numpy, numba's runtime and the loaded data all count, as a user sees it.

Jobs
  floor          python + numpy + the loaded Ratings, nothing fitted (what every job pays)
  ours:als:plain LatentFactorModel(solver="als", validation_fraction=0): the bench_kernels setting
  ours:sgd:plain the same with solver="sgd"
  ours:als       LatentFactorModel(solver="als") at its defaults (10 % validation held out, early stopping,
                 refit on all ratings) capped at ``--steps`` steps
  ours:sgd       the same with solver="sgd"
  implicit       implicit.cpu.als.AlternatingLeastSquares on ``Ratings.to_csr()`` in float32 (its input)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import ROOT, emit, machine, run_child, table  # noqa: E402

JOBS = "floor,ours:als:plain,ours:sgd:plain,ours:als,ours:sgd,implicit"


def child(args) -> None:
    import numpy as np

    from latentatlas.ratings.data import Ratings

    train = Ratings.load(args.data)
    out = {"ratings": len(train)}
    if args.job.startswith("ours"):
        from latentatlas.ratings.model import LatentFactorModel

        parts = args.job.split(":")
        kw = dict(validation_fraction=0) if parts[-1] == "plain" else {}
        m = LatentFactorModel(k=args.k, solver=parts[1], max_steps=args.steps, patience=args.steps + 1,
                              n_threads=args.threads, **kw)
        t0, c0 = time.perf_counter(), time.process_time()
        m.fit(train)
        out.update(fit_s=time.perf_counter() - t0, fit_cpu_s=time.process_time() - c0, rmse=m.history_.train_rmse[-1])
    elif args.job == "implicit":
        import threadpoolctl
        from implicit.cpu.als import AlternatingLeastSquares

        threadpoolctl.threadpool_limits(1, "blas")
        csr = train.to_csr().astype(np.float32)
        model = AlternatingLeastSquares(factors=args.k, iterations=args.steps, num_threads=args.threads,
                                        random_state=0, calculate_training_loss=False)
        t0, c0 = time.perf_counter(), time.process_time()
        model.fit(csr, show_progress=False)
        out.update(fit_s=time.perf_counter() - t0, fit_cpu_s=time.process_time() - c0)
    elif args.job != "floor":
        raise SystemExit(f"unknown job {args.job}")
    emit(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", default=JOBS)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--output", default=str(ROOT / "benchmarks" / "RESULTS-solver-memory.md"))
    ap.add_argument("--note", default="")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--job")
    ap.add_argument("--data")
    args = ap.parse_args()
    if args.child:
        return child(args)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_kernels import data_file

    path = data_file("10M")
    rows = []
    load = os.getloadavg()
    for job in args.jobs.split(","):
        peaks = []
        res = {}
        for _ in range(args.repeats):
            argv = [sys.executable, __file__, "--child", "--job", job, "--data", str(path), "--k", str(args.k),
                    "--steps", str(args.steps), "--threads", str(args.threads)]
            res = run_child(argv, timeout=1800, label=f"solver-memory-{job.replace(':', '-')}")
            if res.get("ok"):
                peaks.append(res["peak_rss_mb"])
        row = {"job": job, **res, "peak_rss_mb": max(peaks) if peaks else None}
        print(json.dumps(row), flush=True)
        rows.append(row)
    base = next((r for r in rows if r["job"] == "implicit" and r.get("peak_rss_mb")), None)
    for row in rows:
        if base and row.get("peak_rss_mb"):
            row["vs_implicit"] = row["peak_rss_mb"] / base["peak_rss_mb"]
    load_end = os.getloadavg()
    cols = [("job", "job", "{}"), ("peak_rss_mb", "peak RSS MB", "{:.0f}"), ("vs_implicit", "÷ implicit", "{:.2f}"),
            ("fit_s", "fit s (wall)", "{:.1f}"), ("fit_cpu_s", "fit CPU s", "{:.1f}"), ("rmse", "train RMSE", "{:.4f}"),
            ("error", "error", "{}")]
    text = "\n".join([
        "# Peak memory of the rating solvers (10 M ratings, k = 64)", "",
        f"Machine: {machine()}; load average {load[0]:.1f} at the start, {load_end[0]:.1f} at the end", "",
        f"Command: `.venv/bin/python benchmarks/bench_solver_memory.py --jobs {args.jobs} --steps {args.steps} "
        f"--threads {args.threads} --repeats {args.repeats}`", "",
        "Peak RSS of the whole child process (ru_maxrss and the sampled RSS of its tree), the data loading "
        "included; the largest over the repeats.", "",
        table(rows, cols), "", args.note, ""])
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
