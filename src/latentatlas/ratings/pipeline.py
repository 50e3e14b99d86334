"""The ratings preparation pipeline as one call: load → k-core → split, with a summary.

The CLI's ``ratings prepare`` and ``ratings train`` (on a raw file) both go through :func:`prepare_ratings`,
so the two always prepare data the same way.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.fsutil import write_json
from latentatlas.progress import Progress
from latentatlas.ratings.data import Ratings
from latentatlas.ratings.io import read_ratings
from latentatlas.ratings.prep import Split, kcore, split
from latentatlas.ratings.synthetic import synthetic

PREPARED_FILE = "prepared.npz"
DEFAULT_VALIDATION_FRACTION = 0.1
DEFAULT_TEST_FRACTION = 0.1


@dataclass(repr=False)
class Prepared:
    """A prepared data set: the split, the filtered ratings it came from, and a JSON-able summary."""

    split: Split
    ratings: Ratings
    summary: dict
    config: dict = field(default_factory=dict)
    #: Side features of users and items (:class:`~latentatlas.ratings.features.Features`), for the bayes solver.
    user_features: object = None
    item_features: object = None

    def __repr__(self) -> str:
        from latentatlas.display import shorten

        s = self.summary
        sizes = " / ".join(f"{k} {v:,}" for k, v in self.split.sizes().items())
        return (f"Prepared({s['users']:,} users × {s['items']:,} items, {s['ratings']:,} ratings from "
                f"{shorten(s['source'], 60)}; {sizes})")

    def _repr_html_(self) -> str:
        from latentatlas.display import html_table

        s = self.summary
        before, after = s["shape_before"], s["shape_after"]
        rows = [("source", s["source"]),
                ("read", f"{before[0]:,} users × {before[1]:,} items, {s['ratings_before']:,} ratings"),
                ("kept", f"{after[0]:,} × {after[1]:,}, {s['ratings']:,} ratings (density {s['density']:.4%}) "
                         f"after the cold-start filter (min_entries={self.config.get('min_entries')})"),
                ("scale", f"{s['rating_min']:g} to {s['rating_max']:g}, mean {s['rating_mean']:.3f}"),
                ("split", ", ".join(f"{k} {v:,}" for k, v in s["split"].items())
                 + (f" (by {s['split_by']})" if s.get("split_by") else ""))]
        if len(s["histogram"]) <= 11:
            rows.append(("histogram", "  ".join(f"{k}: {v:,}" for k, v in s["histogram"].items())))
        for what in ("item_names", "user_names"):
            if s.get(what):
                rows.append((what.replace("_", " "), s[what]))
        for what in ("item", "user"):
            if s.get(f"{what}_features"):
                rows.append((f"{what} features", feature_line(s[f"{what}_features"])))
        return html_table("Prepared ratings", rows)

    def write(self, out_dir: str | Path, created: str | None = None) -> Path:
        """Write ``prepared.npz``, ``summary.json``, a rating histogram and ``run.json`` as one run folder
        (replacing ``out_dir`` as a whole, atomically)."""
        from latentatlas import runs
        from latentatlas.fsutil import save_figure
        from latentatlas.plots.ratings import rating_histogram

        out_dir = Path(out_dir)
        with runs.staged_run(out_dir) as stage:
            self.split.save(stage / runs.FILES[runs.PREPARED], meta={"summary": self.summary, "config": self.config})
            write_json(stage / runs.FILES[runs.SUMMARY], self.summary)
            save_figure(rating_histogram(self.summary["histogram"]), stage / "rating_histogram.png")
            metrics = {k: self.summary[k] for k in ("users", "items", "ratings", "density", "duplicates")}
            metrics.update({f"{k}_ratings": v for k, v in self.summary["split"].items()})
            runs.write_run(
                stage, runs.RATINGS_PREPARE, f"Ratings: {self.summary['source']}", created=created,
                config=self.config, metrics=metrics,
                figures=[runs.figure("rating_histogram.png", "Rating histogram",
                                     f"{self.summary['ratings']:,} ratings after cold-start filtering")],
                artifacts={runs.PREPARED: runs.FILES[runs.PREPARED], runs.SUMMARY: runs.FILES[runs.SUMMARY]},
                tables={runs.RATING_HISTOGRAM_TABLE: [{"rating": k, "count": v} for k, v in self.summary["histogram"].items()]})
        return out_dir / runs.FILES[runs.PREPARED]


def is_database_url(source) -> bool:
    """Whether ``source`` is a database URL (``sqlite:///app.db``, ``postgresql://…``) rather than a file."""
    return isinstance(source, str) and "://" in source


def load_input(path: str | Path | None, *, builtin_size: int = 100_000, seed: int = 0, query: str | None = None,
               **read_options) -> Ratings:
    """Read ``path`` (a ratings file, or a database URL with ``query``), or make the built-in synthetic data
    set when it is None."""
    if path is None:
        n_users, n_items = max(50, builtin_size // 50), max(50, builtin_size // 66)
        grow = math.sqrt(4 * builtin_size / (n_users * n_items))  # small sets: keep the matrix at most 25 % full
        if grow > 1:
            n_users, n_items = math.ceil(n_users * grow), math.ceil(n_items * grow)
        return synthetic(n_users, n_items, builtin_size, seed=seed)
    if is_database_url(path):
        if not query:
            raise LatentAtlasError(f"{path} is a database URL: give the SQL query that returns (user, item, rating) "
                                   "rows as query=")
        from latentatlas.ratings.sql import read_ratings_sql

        sql_options = {k: v for k, v in read_options.items() if k in ("user_col", "item_col", "rating_col",
                                                                        "duplicates")}
        return read_ratings_sql(str(path), query, **sql_options)
    if query:
        raise LatentAtlasError("query= needs a database URL (e.g. sqlite:///app.db) as the input")
    return read_ratings(path, **read_options)


def _names(source, ratings_ids, what: str, log) -> "Names | None":
    """Names read from ``source`` (a file, or a Names), with how many of the ratings' ids they cover."""
    if source is None:
        return None
    from latentatlas.ratings.names import Names, read_names

    names = source if isinstance(source, Names) else read_names(source)
    covered = int((names.index(ratings_ids) >= 0).sum())
    log(f"{what} names: {len(names):,} read from {names.meta.get('source', 'the given names')}, "
        f"{covered:,} of {len(ratings_ids):,} {what}s named")
    if covered == 0:
        raise LatentAtlasError(f"{names.meta.get('source', 'the names')}: none of its {len(names):,} ids is "
                               f"{'an' if what == 'item' else 'a'} {what} id of the ratings (ids like {names.ids[:3].tolist()} vs "
                               f"{ratings_ids[:3].tolist()})")
    return names


def load_features(source, ids, what: str, log=None, *, id_column: str | None = None, columns=None,
                  sep: str | None = None) -> tuple["Features | None", dict | None]:
    """Side features of users or items (``what``) from ``source`` (a file path, a pandas DataFrame or a
    :class:`~latentatlas.ratings.features.Features`), checked against the ratings' ``ids``: none shared is an
    error, a partial overlap is reported. Returns the features and a JSON-able summary (groups, columns, ids
    matched, ids without features, cold-start ids: in the features but not in the ratings)."""
    if source is None:
        return None, None
    from latentatlas.ratings.features import Features, as_features
    from latentatlas.ratings.io.features import check_overlap, read_features

    if isinstance(source, (str, Path)):
        features = read_features(source, kind=what, id_column=id_column, columns=columns, sep=sep)
    else:
        if id_column is not None or columns is not None or sep is not None:
            import pandas as pd

            if isinstance(source, pd.DataFrame):
                features = Features.from_frame(source, id_column, columns, sep=sep or "|",
                                               source=f"{what}_features")
            else:
                features = as_features(source, what)
                if columns is not None:
                    features = features.select([c.strip() for c in columns.split(",")]
                                               if isinstance(columns, str) else list(columns))
        else:
            features = as_features(source, what)
    overlap = check_overlap(features, ids, what)
    summary = {"source": str((features.meta or {}).get("source", f"{what}_features")),
               "groups": features.group_sizes(), "columns": features.n_columns, "ids": len(features),
               "matched": overlap["matched"], "without_features": overlap["without"], "cold_start": overlap["cold"],
               "left_out": list((features.meta or {}).get("left_out", []))}
    if log is not None:
        log(f"{what} features: {feature_line(summary)}")
    return features, summary


def feature_line(s: dict) -> str:
    """A features summary (see :func:`load_features`) on one line."""
    groups = ", ".join(f"{g} ({n})" for g, n in s["groups"].items())
    line = f"{groups}: {s['columns']:,} columns from {s['source']}"
    if s.get("left_out"):
        line += f" (left out as names or nested values: {', '.join(s['left_out'])}; name them to use them)"
    line += f"; {s['matched']:,} ids of the ratings have features"
    if s.get("without_features"):
        line += f", {s['without_features']:,} have none"
    if s.get("cold_start"):
        line += f"; {s['cold_start']:,} cold-start ids (features, no ratings)"
    return line


def prepare_ratings(path: str | Path | None = None, *, min_entries: int = 4, n_validation: int | None = None,
                    n_test: int | None = None, validation_fraction: float | None = None,
                    test_fraction: float | None = None, leave_k_out: int | None = None,
                    leave_last_out: int | None = None, seed: int = 0, builtin_size: int = 100_000,
                    quiet: bool = False, progress=None, item_names=None,
                    user_names=None, query: str | None = None, user_features=None, item_features=None,
                    **read_options) -> Prepared:
    """Load → recursive k-core → seeded split, with a summary.

    Parameters
    ----------
    path : str or Path, optional
        A ratings file (any format :func:`~latentatlas.ratings.io.read_ratings` reads); None for the built-in
        synthetic set of ``builtin_size`` ratings.
    min_entries : int
        Recursively drop users and items with this many ratings or fewer (4 keeps a 5-core).
    n_validation, n_test, validation_fraction, test_fraction : optional
        Held-out ratings, as counts or fractions; a part given neither keeps its default (10 %).
    leave_k_out : int, optional
        Instead: per user, k ratings to test and k to validation.
    leave_last_out : int, optional
        Instead, by time: per user, the k latest ratings to test and the k before them to validation (the
        data needs timestamps: MovieLens files, a ``timestamp``/``date`` column, Yelp's ``date``).
    item_names, user_names : path or Names, optional
        Files naming the ids (MovieLens ``movies.csv``, Yelp ``business.json``…), kept with the data so that
        models, recommendations and reports show names.
    query : str, optional
        With a database URL as ``path`` (``sqlite:///app.db``, any SQLAlchemy URL): the SQL query returning
        (user, item, rating) rows.
    user_features, item_features : path, DataFrame or Features, optional
        Side attributes (MovieLens ``u.user``/``u.item``/``movies.csv``, Yelp ``business.json``, any table with
        an id column; see :func:`~latentatlas.ratings.io.features.read_features`), kept with the result
        (``user_features``/``item_features``) for the ``bayes`` solver; the summary says which groups and how
        many ids match. Ids with features but no ratings become cold-start users/items of the model.
    seed : int
    progress : callable, optional
        Called with each progress line (they also go to the ``latentatlas`` logger).
    **read_options
        Passed to :func:`~latentatlas.ratings.io.read_ratings` (``format``, ``user_col``, ``on_bad_lines``…).

    Returns
    -------
    Prepared, with ``split`` (train / validation / test :class:`Ratings`), ``ratings`` and ``summary``.

    Examples
    --------
    >>> from latentatlas import prepare_ratings
    >>> data = prepare_ratings(builtin_size=5000, test_fraction=0.2)
    >>> sorted(data.split.sizes())
    ['test', 'train', 'validation']
    """
    log = Progress("prepare", quiet, progress)
    checks.integer("builtin_size", builtin_size, 1)
    if leave_k_out is not None and any(v is not None for v in (n_validation, n_test, validation_fraction,
                                                                   test_fraction)):
        raise LatentAtlasError("leave_k_out cannot be combined with n_validation/n_test or fractions")
    if leave_last_out is not None and any(v is not None for v in (leave_k_out, n_validation, n_test,
                                                                      validation_fraction, test_fraction)):
        raise LatentAtlasError("leave_last_out cannot be combined with leave_k_out, n_validation/n_test or "
                               "fractions")
    if leave_k_out is None and leave_last_out is None:  # a part the caller did not size keeps its default share
        if n_validation is None and validation_fraction is None:
            validation_fraction = DEFAULT_VALIDATION_FRACTION
        if n_test is None and test_fraction is None:
            test_fraction = DEFAULT_TEST_FRACTION
    raw = load_input(path, builtin_size=builtin_size, seed=seed, query=query, **read_options)
    if is_database_url(path):
        source = raw.meta.get("source", "database")
    else:
        source = str(path) if path is not None else f"built-in synthetic ({builtin_size:,} ratings, seed {seed})"
    log(f"read {len(raw):,} ratings: {raw.n_users:,} users x {raw.n_items:,} items from {source}")
    if raw.meta.get("duplicates"):
        log(f"{raw.meta['duplicates']:,} repeated (user, item) pairs resolved by keeping "
            f"{raw.meta['duplicate_policy']}")
    filtered = kcore(raw, min_entries)
    log(f"cold-start filter (more than {min_entries} ratings per user and item): "
        f"{raw.n_users:,} x {raw.n_items:,} -> {filtered.n_users:,} x {filtered.n_items:,}, "
        f"{len(filtered):,} ratings kept")
    parts = split(filtered, n_validation, n_test, validation_fraction=validation_fraction,
                  test_fraction=test_fraction, leave_k_out=leave_k_out, leave_last_out=leave_last_out, seed=seed)
    parts = dataclasses.replace(parts, item_names=_names(item_names, filtered.item_ids, "item", log),
                                user_names=_names(user_names, filtered.user_ids, "user", log))
    user_f, user_fs = load_features(user_features, filtered.user_ids, "user", log)
    item_f, item_fs = load_features(item_features, filtered.item_ids, "item", log)
    log(f"split: {parts.sizes()}")
    if leave_k_out is not None and len(parts.test) == 0:
        raise LatentAtlasError(f"leave_k_out={leave_k_out} holds out nothing: no user has more than "
                               f"{2 * leave_k_out} ratings; use a smaller leave_k_out")
    if leave_last_out is not None and len(parts.test) == 0:
        raise LatentAtlasError(f"leave_last_out={leave_last_out} holds out nothing: no user has more than "
                               f"{2 * leave_last_out} ratings; use a smaller leave_last_out")
    for name, n, frac in (("validation", n_validation, validation_fraction), ("test", n_test, test_fraction)):
        if len(getattr(parts, name)) == 0 and ((n or 0) > 0 or (frac or 0) > 0):
            raise LatentAtlasError(f"the {name} part would be empty with {len(filtered):,} ratings; "
                                   f"give a larger n_{name} or {name}_fraction")
    values = filtered.values
    summary = {
        "source": source,
        "users": filtered.n_users, "items": filtered.n_items, "ratings": len(filtered),
        "density": filtered.density,
        "duplicates": int(raw.meta.get("duplicates", 0)),
        "shape_before": [raw.n_users, raw.n_items], "ratings_before": len(raw),
        "shape_after": [filtered.n_users, filtered.n_items],
        "rating_min": float(values.min()), "rating_max": float(values.max()), "rating_mean": float(values.mean()),
        "histogram": filtered.rating_histogram(),
        "split": parts.sizes(),
    }
    if leave_last_out is not None:  # the protocol, for people reading the summary
        summary["split_by"] = (f"time: per user, the {leave_last_out} latest rating{'s' if leave_last_out > 1 else ''} "
                               f"to test and the {leave_last_out} before to validation")
    if filtered.timestamps is not None and len(filtered):
        summary["time_span"] = [_iso(filtered.timestamps.min()), _iso(filtered.timestamps.max())]
    if parts.item_names is not None:
        summary["item_names"] = str(parts.item_names.meta.get("source", ""))
    if parts.user_names is not None:
        summary["user_names"] = str(parts.user_names.meta.get("source", ""))
    if user_fs is not None:
        summary["user_features"] = user_fs
    if item_fs is not None:
        summary["item_features"] = item_fs
    config = {"input": source, "query": query, "min_entries": min_entries, "n_validation": n_validation, "n_test": n_test,
              "validation_fraction": validation_fraction, "test_fraction": test_fraction,
              "leave_k_out": leave_k_out, "seed": seed,
              **{k: v for k, v in read_options.items() if v is not None}}
    if leave_last_out is not None:
        config["leave_last_out"] = leave_last_out
    if user_fs is not None:
        config["user_features"] = user_fs["source"]
    if item_fs is not None:
        config["item_features"] = item_fs["source"]
    return Prepared(parts, filtered, summary, config, user_features=user_f, item_features=item_f)


def _iso(seconds: float) -> str:
    """Seconds since the epoch as an ISO date and time (UTC), for summaries."""
    import numpy as np

    try:
        return str(np.datetime64(int(round(float(seconds))), "s")).replace("T", " ")
    except (OverflowError, ValueError):
        return f"{seconds:g} s"


def summary_text(summary: dict) -> str:
    """The summary as a few aligned lines for people."""
    before, after = summary["shape_before"], summary["shape_after"]
    lines = [
        f"source      {summary['source']}",
        f"shape       {before[0]:,} users x {before[1]:,} items ({summary['ratings_before']:,} ratings) before "
        f"filtering -> {after[0]:,} x {after[1]:,} after",
        f"ratings     {summary['ratings']:,} (density {summary['density']:.4%}, "
        f"{summary['duplicates']:,} duplicates resolved)",
        f"scale       {summary['rating_min']:g} to {summary['rating_max']:g}, mean {summary['rating_mean']:.3f}",
        "split       " + ", ".join(f"{k} {v:,}" for k, v in summary["split"].items())
        + (f" (by {summary['split_by']})" if summary.get("split_by") else ""),
        "histogram   " + "  ".join(f"{k}: {v:,}" for k, v in summary["histogram"].items()),
    ]
    if summary.get("time_span"):
        lines.insert(4, f"time        {summary['time_span'][0]} to {summary['time_span'][1]} (UTC)")
    for what in ("user", "item"):
        if summary.get(f"{what}_features"):
            lines.append(f"{what + ' feat.':<12}{feature_line(summary[what + '_features'])}")
    return "\n".join(lines)
