"""Seconds per ALS iteration / SGD epoch and peak memory of LatentFactorModel, beside implicit and cornac.

    .venv/bin/python benchmarks/bench_kernels.py [--sizes small,10M] [--threads 1,2] [--output FILE]

``small``: MovieLens-100K's 80 % training part when ``benchmarks/data/ml-100k/u.data`` exists (see
get_data.sh), else a synthetic set of the same shape; k = 100. ``10M``: synthetic 200 000 users x 20 000
items x 10 M ratings (generated once into benchmarks/data/), k = 64. Every measurement runs in its own
process (benchmarks/_harness.py): the time per step is the median over the timed steps (kernels compiled
beforehand), the peak memory is the whole process's, data loading included. This script only measures
speed and memory; accuracy against all peers is benchmarks/bench_recommenders.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import DATA, ROOT, emit, fmt_ratio, machine, run_child, table  # noqa: E402

SIZES = {"small": {"k": 100, "steps": 10}, "10M": {"k": 64, "steps": 3}}


def data_file(size: str) -> Path:
    path = DATA / f"kernels_{size}.npz"
    if path.exists():
        return path
    from latentatlas.ratings import prep
    from latentatlas.ratings.data import Ratings
    from latentatlas.ratings.synthetic import synthetic

    DATA.mkdir(parents=True, exist_ok=True)
    if size == "small":
        ml = DATA / "ml-100k" / "u.data"
        if ml.exists():
            from latentatlas.ratings.io import read_ratings

            r = read_ratings(ml)
        else:
            r = synthetic(943, 1682, 100_000, seed=0)
        train = prep.split(r, test_fraction=0.2, seed=0).train
    else:
        train = synthetic(200_000, 20_000, 10_000_000, seed=0)
    # meta dropped: a reader's meta["format"] would override the file's format tag in Ratings.save
    Ratings(train.users, train.items, train.values, train.user_ids, train.item_ids, {}).save(path)
    return path


# --- children ---------------------------------------------------------------------------------------------
def child(args) -> None:
    import numpy as np

    from latentatlas.ratings.data import Ratings

    train = Ratings.load(args.data)
    k, steps, threads = args.k, args.steps, args.threads
    out = {"ratings": len(train)}
    if args.job.startswith("ours"):
        from latentatlas.ratings.model import LatentFactorModel

        _, solver, method = args.job.split(":")
        kw = {"als_method": method} if solver == "als" else {"sgd_schedule": method}
        m = LatentFactorModel(k=k, solver=solver, max_steps=steps, patience=steps + 1, eval_every=steps,
                              n_threads=threads, validation_fraction=0, **kw)
        t0 = time.perf_counter()
        m.fit(train)
        out.update(fit_s=time.perf_counter() - t0, step_s=float(np.median(m.history_.seconds)),
                   cpu_step_s=float(np.median(m.history_.cpu_seconds)), steps_s=m.history_.seconds)
    elif args.job == "implicit":
        import threadpoolctl
        from implicit.cpu.als import AlternatingLeastSquares

        threadpoolctl.threadpool_limits(1, "blas")
        csr = train.to_csr().astype(np.float32)
        stamps = []
        model = AlternatingLeastSquares(factors=k, iterations=steps + 1, num_threads=threads, random_state=0,
                                        calculate_training_loss=False)
        t0 = time.perf_counter()
        model.fit(csr, show_progress=False,
                  callback=lambda *a: stamps.append((time.perf_counter(), time.process_time())))
        gaps = np.diff(np.array(stamps), axis=0)
        out.update(fit_s=time.perf_counter() - t0, step_s=float(np.median(gaps[:, 0])),
                   cpu_step_s=float(np.median(gaps[:, 1])), steps_s=gaps[:, 0].tolist())
    elif args.job == "cornac":
        import cornac

        uir = list(zip(train.users.tolist(), train.items.tolist(), train.values.astype(float).tolist()))
        ds = cornac.data.Dataset.from_uir(uir, seed=0)
        times = []
        for n in (1, steps + 1):
            mf = cornac.models.MF(k=k, max_iter=n, learning_rate=0.01, lambda_reg=0.02, use_bias=True,
                                  early_stop=False, verbose=False, seed=0)
            t0, c0 = time.perf_counter(), time.process_time()
            mf.fit(ds)
            times.append((time.perf_counter() - t0, time.process_time() - c0))
        out.update(step_s=(times[1][0] - times[0][0]) / steps, cpu_step_s=(times[1][1] - times[0][1]) / steps)
    else:
        raise SystemExit(f"unknown job {args.job}")
    emit(out)


# --- parent -----------------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="small,10M")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--jobs", default="ours:als:cg,ours:als:cholesky,ours:sgd:blocks,ours:sgd:serial,implicit,cornac")
    ap.add_argument("--output", default=str(ROOT / "benchmarks" / "RESULTS-kernels.md"))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--job")
    ap.add_argument("--data")
    ap.add_argument("--k", type=int)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--threads-child", dest="threads_child", type=int)
    args = ap.parse_args()
    if args.child:
        args.threads = args.threads_child
        return child(args)
    rows = []
    for size in args.sizes.split(","):
        path = data_file(size)
        spec = SIZES[size]
        for job in args.jobs.split(","):
            if size == "10M" and job in ("ours:als:cholesky", "ours:sgd:serial", "cornac"):
                continue  # the exact solve, the classic loop and cornac's Python-tuple input are small-data tools
            for threads in map(int, args.threads.split(",")):
                if job in ("ours:sgd:serial", "cornac") and threads > 1:
                    continue  # single-threaded by design
                argv = [sys.executable, __file__, "--child", "--job", job, "--data", str(path), "--k",
                        str(spec["k"]), "--steps", str(spec["steps"]), "--threads-child", str(threads)]
                res = run_child(argv, timeout=1800, label=f"kernels-{size}-{job}-{threads}")
                row = {"size": size, "job": job.replace("ours:", "latentatlas "), "threads": threads, **res}
                print(json.dumps({k: v for k, v in row.items() if k != "steps_s"}), flush=True)
                rows.append(row)
    for row in rows:
        base = next((r for r in rows if r["size"] == row["size"] and r["job"] == "implicit"
                     and r["threads"] == row["threads"] and r.get("ok")), None)
        if base and row.get("ok") and "als" in row["job"]:
            row["vs_implicit"] = base["step_s"] / row["step_s"]
            row["vs_implicit_cpu"] = base["cpu_step_s"] / row["cpu_step_s"]
        if row.get("ok") and row.get("step_s"):
            row["mratings_per_s"] = row["ratings"] / row["step_s"] / 1e6
    cols = [("size", "data", "{}"), ("job", "method", "{}"), ("threads", "threads", "{}"),
            ("step_s", "s / step", "{:.4f}"), ("mratings_per_s", "M ratings/s", "{:.1f}"),
            ("cpu_step_s", "CPU s / step", "{:.4f}"), ("vs_implicit", "implicit ÷ ours (wall)", "{:.1f}"),
            ("vs_implicit_cpu", "implicit ÷ ours (CPU)", "{:.1f}"), ("peak_rss_mb", "peak MB", "{:.0f}"),
            ("error", "error", "{}")]
    text = "\n".join([
        "# Kernel speed and memory (LatentFactorModel vs implicit ALS and cornac MF)", "",
        f"Machine: {machine()}", "",
        f"Command: `.venv/bin/python benchmarks/bench_kernels.py --sizes {args.sizes} --threads {args.threads}`",
        "", "small: k = 100; 10M: k = 64. s / step = median wall seconds per ALS iteration or SGD epoch; CPU s / "
        "step = the process's CPU time over the same step (all threads), the fairer figure when the machine is "
        "shared.", "",
        table(rows, cols), ""])
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
