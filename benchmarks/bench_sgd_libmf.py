"""Seconds per SGD epoch and test RMSE after N epochs: LatentFactorModel(solver="sgd") beside LIBMF, 10 M ratings.

    .venv/bin/python benchmarks/bench_sgd_libmf.py [--threads 1,2] [--epochs 10] [--repeats 3] [--output FILE]

Data: the synthetic 10 M-rating set of benchmarks/bench_kernels.py (200 000 users x 20 000 items), split 90/10
(seeded) into train and test once (benchmarks/data/sgd_libmf_10M.npz); k = 64.

Speed (``--epochs`` E): each job runs in its own process, ``--repeats`` times, and the table gives medians.
  LIBMF (the ``libmf`` binding, LIBMF's defaults: L2 λ = 0.1 on P and Q, eta 0.1, adaptive rates): fitted for
  1 and for 1 + E iterations in one process; an epoch is (t(1 + E) − t(1)) / E, wall and CPU time, so data
  conversion and set-up cancel.
  ours: the median of the solver's own per-step wall and CPU times (``history_.seconds`` / ``cpu_seconds``)
  over E epochs, kernels compiled beforehand.
  LIBMF AVX (``--libmf-avx FILE``, job ``libmf-avx``): the same binding on a LIBMF compiled with its SIMD
  path, as LIBMF's own Makefile does (the pip wheel compiles mf.cpp without USESSE/USEAVX, i.e. scalar):
  ``g++ -O3 -std=c++11 -DUSEAVX -mavx -march=native -fPIC -shared -pthread mf.cpp libmf_interface.cpp
  -o FILE`` in the src_cpp folder of ``pip download --no-binary :all: libmf==0.9.2``.
Accuracy: test RMSE after every epoch (``--curve``): LIBMF through its train/validation interface (its own
  printed ``va_rmse``, parsed), ours through ``validation=test`` (unclipped, like LIBMF's).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import DATA, ROOT, emit, machine, run_child, table  # noqa: E402

SPLIT = DATA / "sgd_libmf_10M.npz"


def split_file() -> Path:
    if SPLIT.exists():
        return SPLIT
    import numpy as np

    from bench_kernels import data_file
    from latentatlas.ratings.data import Ratings
    from latentatlas.ratings.prep import split

    r = Ratings.load(data_file("10M"))
    s = split(r, test_fraction=0.1, seed=0)
    np.savez(SPLIT, n_users=r.n_users, n_items=r.n_items, train_u=s.train.users, train_i=s.train.items,
             train_r=s.train.values, test_u=s.test.users, test_i=s.test.items, test_r=s.test.values)
    return SPLIT


def load(path):
    import numpy as np

    from latentatlas.ratings.data import Ratings

    z = np.load(path)
    uid, iid = np.arange(int(z["n_users"])), np.arange(int(z["n_items"]))
    train = Ratings(z["train_u"], z["train_i"], z["train_r"], uid, iid, {})
    test = Ratings(z["test_u"], z["test_i"], z["test_r"], uid, iid, {})
    return train, test


def libmf_kw(threads: int, k: int, iters: int, quiet: bool = True) -> dict:
    # LIBMF's own defaults (mf_get_default_param), not the binding's (L1 0.04, no L2)
    return {"nr_threads": threads, "quiet": quiet, "lambda_p1": 0.0, "lambda_q1": 0.0, "lambda_p2": 0.1,
            "lambda_q2": 0.1, "k": k, "nr_iters": iters}


def child(args) -> None:
    import numpy as np

    train, test = load(args.data)
    out: dict = {"ratings": len(train)}
    E = args.epochs
    if args.job.startswith("libmf") and not args.curve:
        from libmf import mf

        data = np.column_stack([train.users, train.items, train.values]).astype(np.float32)
        times = []
        for n in (1, 1 + E):
            m = mf.MF(**libmf_kw(args.threads, args.k, n))
            t0, c0 = time.perf_counter(), time.process_time()
            m.fit(data)
            times.append((time.perf_counter() - t0, time.process_time() - c0))
        pred = m.predict(np.asfortranarray(np.column_stack([test.users, test.items]).astype(np.float32)))
        out.update(step_s=(times[1][0] - times[0][0]) / E, cpu_step_s=(times[1][1] - times[0][1]) / E,
                   test_rmse=float(np.sqrt(np.mean((pred - test.values) ** 2))))
    elif args.job.startswith("libmf"):
        from libmf import mf

        data = np.column_stack([train.users, train.items, train.values]).astype(np.float32)
        va = np.column_stack([test.users, test.items, test.values]).astype(np.float32)
        m = mf.MF(**libmf_kw(args.threads, args.k, E, quiet=False))
        m.mf_train_test(data, va)  # prints "iter tr_rmse va_rmse obj" lines on the C side's stdout
        out["curve_from_stdout"] = True
    else:
        from latentatlas.ratings.model import LatentFactorModel

        kw = dict(lr=args.lr) if args.lr else {}
        m = LatentFactorModel(k=args.k, solver="sgd", sgd_schedule=args.job.split(":")[1], max_steps=E,
                              patience=E + 1, eval_every=1 if args.curve else E, tol=0.0, n_threads=args.threads,
                              validation_fraction=0, refit=False, seed=0, **kw)
        if args.curve:
            m.fit(train, validation=test)
            out["curve"] = m.history_.validation_rmse
        else:
            m.fit(train)
            pred = m.predict_indices(test.users, test.items, clip=False)
            out.update(step_s=float(np.median(m.history_.seconds)), cpu_step_s=float(np.median(m.history_.cpu_seconds)),
                       test_rmse=float(np.sqrt(np.mean((pred - test.values) ** 2))))
    emit(out)


def parse_libmf_curve(stdout_tail: str) -> list[float]:
    return [float(m.group(1)) for m in re.finditer(r"^\s*\d+\s+[\d.]+\s+([\d.]+)\s", stdout_tail, re.M)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--jobs", default="libmf,ours:blocks")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.0)
    ap.add_argument("--libmf-avx", default="", help="LIBMF compiled with -DUSEAVX (job libmf-avx)")
    ap.add_argument("--curve", action="store_true", help="test RMSE per epoch instead of timings")
    ap.add_argument("--output", default=str(ROOT / "benchmarks" / "RESULTS-sgd-libmf.md"))
    ap.add_argument("--note", default="")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--job")
    ap.add_argument("--data")
    args = ap.parse_args()
    if args.child:
        args.threads = int(args.threads)
        return child(args)
    path = split_file()
    load0 = os.getloadavg()
    combos = [(t, job) for t in map(int, args.threads.split(",")) for job in args.jobs.split(",")]
    runs: dict = {c: [] for c in combos}
    loads = []
    for _ in range(1 if args.curve else args.repeats):  # repeats interleaved: A B A B, so load drift hits all
        for threads, job in combos:
            argv = [sys.executable, __file__, "--child", "--job", job, "--data", str(path), "--k", str(args.k),
                    "--epochs", str(args.epochs), "--threads", str(threads), "--lr", str(args.lr)]
            if args.curve:
                argv.append("--curve")
            env = {"LIBMF_OBJ": str(Path(args.libmf_avx).resolve())} if job == "libmf-avx" else {}
            if args.curve and job.startswith("libmf"):
                import subprocess

                p = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **env})
                res = {"ok": p.returncode == 0, "curve": parse_libmf_curve(p.stdout)}
            else:
                res = run_child(argv, timeout=1800, env=env, label=f"sgd-libmf-{job.replace(':', '-')}-{threads}")
            loads.append(os.getloadavg()[0])
            print(json.dumps({"job": job, "threads": threads, "load": loads[-1], **res}), flush=True)
            if res.get("ok"):
                runs[(threads, job)].append(res)
    rows = []
    name = {"libmf": "LIBMF 0.9.2 (pip wheel, scalar)", "libmf-avx": "LIBMF 0.9.2 (built with AVX)"}
    for (threads, job), got in runs.items():
        row = {"job": name.get(job) or f"latentatlas sgd:{job.split(':')[1]}", "key": job, "threads": threads,
               "n": len(got)}
        for key in ("step_s", "cpu_step_s", "test_rmse", "peak_rss_mb"):
            vals = [r[key] for r in got if r.get(key) is not None]
            if vals:
                row[key] = statistics.median(vals)
                row[key + "_all"] = vals
        if args.curve and got:
            row["curve"] = got[0].get("curve")
        rows.append(row)
    load1 = os.getloadavg()
    if args.curve:
        E = max(len(r.get("curve") or []) for r in rows)
        head = "| epoch | " + " | ".join(f"{r['job']}, {r['threads']} thr" for r in rows) + " |"
        lines = [head, "|---" + "|---:" * len(rows) + "|"]
        for e in range(E):
            cells = [f"{r['curve'][e]:.4f}" if r.get("curve") and e < len(r["curve"]) else "–" for r in rows]
            lines.append(f"| {e + 1} | " + " | ".join(cells) + " |")
        body = "\n".join(lines)
        title = "# SGD test RMSE per epoch: latentatlas vs LIBMF (10 M ratings, k = 64)"
    else:
        for row in rows:
            base = next((r for r in rows if r["key"] == "libmf" and r["threads"] == row["threads"]
                         and r.get("step_s")), None)
            if base and row.get("step_s"):
                row["speed_wall"] = base["step_s"] / row["step_s"]
                row["speed_cpu"] = base["cpu_step_s"] / row["cpu_step_s"]
        cols = [("job", "library", "{}"), ("threads", "threads", "{}"), ("step_s", "s / epoch (wall)", "{:.3f}"),
                ("cpu_step_s", "CPU s / epoch", "{:.3f}"), ("speed_wall", "speed ÷ LIBMF (wall)", "{:.2f}"),
                ("speed_cpu", "speed ÷ LIBMF (CPU)", "{:.2f}"), ("test_rmse", f"test RMSE after {args.epochs}",
                                                                 "{:.4f}"), ("n", "runs", "{}")]
        body = table(rows, cols) + "\n\nAll runs (wall s / CPU s per epoch):\n\n" + "\n".join(
            f"- {r['job']}, {r['threads']} thr: " + ", ".join(
                f"{w:.3f}/{c:.3f}" for w, c in zip(r.get("step_s_all", []), r.get("cpu_step_s_all", [])))
            for r in rows)
        title = "# SGD seconds per epoch: latentatlas vs LIBMF (10 M ratings, k = 64)"
    cmd = " ".join(sys.argv[1:])
    text = "\n".join([title, "", f"Machine: {machine()}; load average {load0[0]:.1f} at the start, "
                      f"{load1[0]:.1f} at the end (1-min averages after each run: {min(loads):.1f}–{max(loads):.1f})", "",
                      f"Command: `.venv/bin/python benchmarks/bench_sgd_libmf.py {cmd}`", "", body, "", args.note, ""])
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
