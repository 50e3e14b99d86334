"""``--engine spark`` for the ratings commands: the shared Spark options and the shells that print what
:mod:`latentatlas.ratings.spark.workflow` returns."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from latentatlas.cli import options
from latentatlas.errors import printable

ENGINES = ("local", "spark")

# The Spark options are defined once, in cli/options.py; re-exported here beside the commands that use them.
Engine, SparkMaster, SparkConf = options.Engine, options.SparkMaster, options.SparkConf


def _location(path):
    """``path`` as Spark should see it. A :class:`pathlib.Path` folds a URI's ``//`` (``hdfs://nn/x``
    becomes ``hdfs:/nn/x``) and the authority cannot be told apart afterwards, so the URI is recovered
    from the command line that produced it."""
    if path is None:
        return None
    text = str(path)
    if isinstance(path, Path) and re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:/[^/]", text):
        for arg in sys.argv[1:]:
            if "://" in arg and str(Path(arg)) == text:
                return arg
    return text


def _progress(quiet: bool):
    """None lets each step label its own lines (the CLI shows the ``latentatlas`` logger on stderr); quiet
    runs get a silent one."""
    from latentatlas.progress import Progress

    return Progress("spark", quiet=True) if quiet else None


def _print_json(obj) -> None:
    from latentatlas.fsutil import to_json

    print(to_json(obj, indent=None))


def prepare_command(input, *, out, master: str = "local[*]", conf=None, json_out: bool = False,
                    quiet: bool = False, builtin_size: int = 100_000, **options) -> dict:
    """``latentatlas ratings prepare --engine spark``: prints the summary (``--json``: as one object)."""
    from latentatlas.ratings.pipeline import summary_text
    from latentatlas.ratings.spark import workflow

    prepared = workflow.prepare(_location(input), _location(out), master=master, conf=conf,
                                builtin_size=builtin_size, progress=_progress(quiet or json_out), **options)
    if json_out:
        _print_json(prepared.summary)
    else:
        print(summary_text(prepared.summary))
        if not quiet:
            print(f"wrote {_location(out)}/train.parquet, validation.parquet, test.parquet", file=sys.stderr)
    return prepared.summary


def train_command(data=None, *, train_file=None, validation_file=None, test_file=None, out=None, metrics=None,
                  json_out: bool = False, quiet: bool = False, master: str = "local[*]", conf=None,
                  **options) -> dict:
    """``latentatlas ratings train --engine spark``: prints the test/validation RMSE line (``--json``: the
    metrics as one object). ``options``: :func:`latentatlas.ratings.spark.workflow.train`'s."""
    from latentatlas.ratings.spark import workflow

    result = workflow.train(_location(data), train_file=_location(train_file),
                            validation_file=_location(validation_file), test_file=_location(test_file),
                            out=out, metrics=metrics, master=master, conf=conf, progress=_progress(quiet),
                            **options)
    m = result.metrics
    if json_out:
        _print_json(m)
    else:
        parts = [f"spark als k={m['k']}"]
        for key, label in (("test_rmse", "test RMSE"), ("test_mae", "MAE"), ("validation_rmse", "validation RMSE")):
            if key in m:
                parts.append(f"{label} {m[key]:.4f}")
        parts.append(f"{m['max_iter']} iterations, {m['seconds_per_iteration']:.2f} s/iteration")
        print(", ".join(parts))
    return m


def evaluate_command(model_path, test, *, json_out: bool = False, master: str = "local[*]", conf=None,
                     quiet: bool = False, **read_options) -> dict:
    """``latentatlas ratings evaluate MODEL TEST --engine spark``: prints RMSE, MAE and the counts."""
    from latentatlas.ratings.spark import workflow

    out = workflow.evaluate(model_path, _location(test), master=master, conf=conf,
                            progress=_progress(quiet or json_out), **read_options)
    if json_out:
        _print_json(out)
    else:
        for name, value in out.items():
            print(f"{name:20s} {value:.4f}" if isinstance(value, float) else f"{name:20s} {value}")
    return out


def recommend_command(model_path, user, n: int = 10, *, include_seen: bool = False, json_out: bool = False,
                      master: str = "local[*]", conf=None, quiet: bool = False) -> list[dict]:
    """``latentatlas ratings recommend MODEL --user ID --engine spark``: prints the ranked items."""
    from latentatlas.ratings.spark import workflow

    rows = workflow.recommend(model_path, user, n, include_seen=include_seen, master=master, conf=conf,
                              progress=_progress(quiet or json_out))
    if json_out:
        _print_json(rows)
    else:
        print(f"{'rank':>4}  {'item':>12}  score")
        for row in rows:
            print(f"{row['rank']:>4}  {printable(str(row['item'])):>12}  {row['score']:.3f}")
    return rows


__all__ = ["ENGINES", "Engine", "SparkMaster", "SparkConf", "prepare_command",
           "train_command", "evaluate_command", "recommend_command"]
