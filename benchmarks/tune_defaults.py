"""Evidence for LatentFactorModel's defaults: a grid on MovieLens-100K, chosen on validation data only.

Split as in bench_recommenders.py: random 80/20 (seed 0); the 80 % is split again 90/10 into fit and
validation. Every configuration trains on "fit", early-stops on "validation", and is RANKED BY VALIDATION
RMSE; the test RMSE (the 20 %, never used for any choice) is printed beside it only to show how the chosen
setting generalises. Grid: k, λ, centring (biases / user means), λ weighting (per rating count or plain) for
ALS; k, λ, learning rate, centring for SGD. (An earlier script ranked configurations by test RMSE; it was
removed, because a default chosen on a test split cannot be reported on it.)

    .venv/bin/python benchmarks/tune_defaults.py          # ~10 min on 2 busy cores
    .venv/bin/python benchmarks/tune_defaults.py --quick  # a smaller grid
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import HERE, machine, table  # noqa: E402
from bench_recommenders import Data, prepare  # noqa: E402

BEGIN, END = "<!-- tune_defaults: begin -->", "<!-- tune_defaults: end -->"


def grid(quick: bool):
    ks = (32, 64, 128) if quick else (16, 32, 64, 128)
    for k, center in itertools.product(ks, ("biases", "user")):
        for weighting, regs in (("count", (0.05, 0.08, 0.12, 0.2)), ("none", (2.0, 5.0, 10.0, 20.0))):
            if quick and weighting == "none":
                regs = (5.0, 10.0)
            for reg in regs:
                yield {"solver": "als", "k": k, "reg": reg, "center": center, "reg_weighting": weighting}
        for reg, lr in itertools.product((0.03, 0.065, 0.1) if not quick else (0.04, 0.065, 0.1),
                                         (0.01, 0.02, 0.04) if not quick else (0.02,)):
            yield {"solver": "sgd", "k": k, "reg": reg, "lr": lr, "center": center}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--output", default=str(HERE / "RESULTS-recommenders.md"))
    args = ap.parse_args()
    from latentatlas.ratings.model import LatentFactorModel

    path, desc = prepare("small")
    d = Data(str(path))
    fit, val = d.ratings("fit"), d.ratings("val")

    def run(params):
        t0 = time.perf_counter()
        m = LatentFactorModel(seed=0, refit=False, **params).fit(fit, validation=val)
        h = m.history_
        return {**params, "val_rmse": float(np.min(h.validation_rmse)) if h.validation_rmse else float("nan"),
                "test_rmse": d.rmse(m.predict_indices(d.test_u, d.test_i)), "steps": h.best_step,
                "fit_s": time.perf_counter() - t0}

    rows, defaults = [], {}
    for solver in ("als", "sgd"):
        r = run({"solver": solver})
        m = LatentFactorModel(solver=solver)
        reg = getattr(m, "reg_value", m.reg)
        r.update(k=m.k, reg=reg() if callable(reg) else reg, lr=m.lr if solver == "sgd" else None, center=m.center,
                 reg_weighting=m.reg_weighting if solver == "als" else None, config="current default")
        defaults[solver] = r
        print(f"default {solver}: val {r['val_rmse']:.4f} test {r['test_rmse']:.4f}", file=sys.stderr, flush=True)
    configs = list(grid(args.quick))
    for n, params in enumerate(configs, 1):
        r = run(params)
        rows.append(r)
        print(f"[{n}/{len(configs)}] {params}: val {r['val_rmse']:.4f} test {r['test_rmse']:.4f} "
              f"({r['fit_s']:.1f} s)", file=sys.stderr, flush=True)

    cols = [("config", "", "{}"), ("solver", "solver", "{}"), ("k", "k", "{}"), ("reg", "λ", "{:g}"),
            ("lr", "lr", "{:g}"), ("center", "centring", "{}"), ("reg_weighting", "λ weighting", "{}"),
            ("steps", "best step", "{}"), ("val_rmse", "validation RMSE", "{:.4f}"), ("test_rmse", "test RMSE", "{:.4f}")]
    parts = [BEGIN, "## Choosing the defaults (benchmarks/tune_defaults.py)", "",
             f"Machine: {machine()}", "", f"Command: `.venv/bin/python benchmarks/tune_defaults.py"
             f"{' --quick' if args.quick else ''}`", "",
             f"Data: {desc}; random 80/20 split (seed 0), the 80 % split 90/10 into fit / validation. "
             f"{len(configs)} configurations, each early-stopped on validation, ranked by validation RMSE only; "
             "test RMSE is shown for information and chose nothing.", ""]
    for solver in ("als", "sgd"):
        mine = sorted((r for r in rows if r["solver"] == solver), key=lambda r: r["val_rmse"])
        mine[0]["config"] = "best on validation"
        shown = [defaults[solver]] + mine[:8]
        parts += [f"### {solver.upper()}: current default and the 8 best on validation", "", table(shown, cols), ""]
        parts.append(f"Spread over the {len(mine)} {solver.upper()} configurations: validation RMSE "
                     f"{mine[0]['val_rmse']:.4f} to {mine[-1]['val_rmse']:.4f}.\n")
        by_center = {c: min((r for r in mine if r["center"] == c), key=lambda r: r["val_rmse"]) for c in ("biases", "user")}
        parts.append("Best with biases vs with user means only: " + ", ".join(
            f"{c}: validation {r['val_rmse']:.4f} / test {r['test_rmse']:.4f}" for c, r in by_center.items()) + ".\n")
        if solver == "als":
            by_w = {w: min((r for r in mine if r["reg_weighting"] == w), key=lambda r: r["val_rmse"])
                    for w in ("count", "none")}
            parts.append("Best with λ weighted by rating count (ALS-WR) vs plain λ: " + ", ".join(
                f"{w}: validation {r['val_rmse']:.4f} / test {r['test_rmse']:.4f} (λ={r['reg']:g}, k={r['k']})"
                for w, r in by_w.items()) + ".\n")
    parts.append(END)
    section = "\n".join(parts) + "\n"
    print(section)
    from latentatlas.fsutil import write_text

    write_text(HERE / "RESULTS-tune.md", section)
    out = Path(args.output)
    text = out.read_text() if out.exists() else ""
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + section + text[text.index(END) + len(END) + 1:]
    else:
        text = text + "\n" + section
    write_text(out, text)


if __name__ == "__main__":
    main()
