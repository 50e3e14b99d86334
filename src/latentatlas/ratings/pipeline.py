"""The ratings preparation pipeline as one call: load → k-core → split, with a summary.

The CLI's ``ratings prepare`` and ``ratings train`` (on a raw file) both go through :func:`prepare_ratings`,
so the two always prepare data the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass
class Prepared:
    """A prepared data set: the split, the filtered ratings it came from, and a JSON-able summary."""

    split: Split
    ratings: Ratings
    summary: dict
    config: dict = field(default_factory=dict)

    def write(self, out_dir: str | Path, created: str | None = None) -> Path:
        """Write ``prepared.npz``, ``summary.json``, a rating histogram and ``run.json`` into ``out_dir``."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = self.split.save(out_dir / PREPARED_FILE, meta={"summary": self.summary, "config": self.config})
        write_json(out_dir / "summary.json", self.summary)
        figures = []
        try:
            from latentatlas.plots.ratings import rating_histogram
        except ImportError:  # plots are optional for the data itself
            rating_histogram = None
        if rating_histogram is not None:
            from latentatlas.fsutil import save_figure

            save_figure(rating_histogram(self.summary["histogram"]), out_dir / "rating_histogram.png")
            figures.append({"file": "rating_histogram.png", "title": "Rating histogram",
                            "caption": f"{self.summary['ratings']:,} ratings after cold-start filtering"})
        metrics = {k: self.summary[k] for k in ("users", "items", "ratings", "density", "duplicates")}
        metrics.update({f"{k}_ratings": v for k, v in self.summary["split"].items()})
        write_json(out_dir / "run.json", {
            "kind": "ratings-prepare", "title": f"Ratings: {self.summary['source']}", "created": created,
            "config": self.config, "metrics": metrics, "figures": figures,
            "artifacts": {"prepared": PREPARED_FILE, "summary": "summary.json"},
            "tables": {"rating histogram": [{"rating": k, "count": v} for k, v in self.summary["histogram"].items()]},
        })
        return path


def load_input(path: str | Path | None, *, builtin_size: int = 100_000, seed: int = 0, **read_options) -> Ratings:
    """Read ``path``, or make the built-in synthetic data set when it is None."""
    if path is None:
        n_users, n_items = max(50, builtin_size // 50), max(50, builtin_size // 66)
        return synthetic(n_users, n_items, builtin_size, seed=seed)
    return read_ratings(path, **read_options)


def prepare_ratings(path: str | Path | None = None, *, min_entries: int = 4, n_validation: int | None = None,
                    n_test: int | None = None, validation_fraction: float | None = None,
                    test_fraction: float | None = None, leave_k_out: int | None = None, seed: int = 0,
                    builtin_size: int = 100_000, quiet: bool = False, **read_options) -> Prepared:
    """Load → recursive k-core (``min_entries``) → seeded split. Prints progress unless ``quiet``.

    With no split argument, 10 % of the ratings go to validation and 10 % to test.
    """
    log = Progress("prepare", quiet)
    if builtin_size <= 0:
        raise LatentAtlasError(f"builtin_size must be positive, got {builtin_size}")
    if not any(v is not None for v in (n_validation, n_test, validation_fraction, test_fraction, leave_k_out)):
        validation_fraction, test_fraction = DEFAULT_VALIDATION_FRACTION, DEFAULT_TEST_FRACTION
    if leave_k_out is not None and any(v is not None for v in (n_validation, n_test, validation_fraction,
                                                                   test_fraction)):
        raise LatentAtlasError("leave_k_out cannot be combined with n_validation/n_test or fractions")
    raw = load_input(path, builtin_size=builtin_size, seed=seed, **read_options)
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
                  test_fraction=test_fraction, leave_k_out=leave_k_out, seed=seed)
    log(f"split: {parts.sizes()}")
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
    config = {"input": source, "min_entries": min_entries, "n_validation": n_validation, "n_test": n_test,
              "validation_fraction": validation_fraction, "test_fraction": test_fraction,
              "leave_k_out": leave_k_out, "seed": seed,
              **{k: v for k, v in read_options.items() if v is not None}}
    return Prepared(parts, filtered, summary, config)


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
        "split       " + ", ".join(f"{k} {v:,}" for k, v in summary["split"].items()),
        "histogram   " + "  ".join(f"{k}: {v:,}" for k, v in summary["histogram"].items()),
    ]
    return "\n".join(lines)
