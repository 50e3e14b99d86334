"""The run-folder contract: what every command writes and what the report reads.

A run folder holds ``run.json`` and the files it names. ``run.json`` has a ``kind`` (one of :data:`KINDS`),
a ``title``, ``created`` (UTC, ISO 8601), ``config`` and ``metrics`` (flat objects), ``figures`` (a list of
``{file, title, caption}``), ``artifacts`` (key → file name; the keys are the constants below) and
``tables`` (name → list of row objects). Every writer goes through :func:`write_run` and every reader
through :func:`load_run`, so a renamed key fails a test instead of silently emptying a report section.

Whole runs are replaced atomically with :func:`staged_run`: the new run is written into a temporary
sibling folder that is swapped in at the end, so a kill or a full disk leaves the old run or the new one,
never a new ``model.npz`` beside an old ``run.json``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import datetime as _dt
import errno
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from latentatlas.errors import LatentAtlasError
from latentatlas.fsutil import umask, write_json

RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"

# Kinds of run.
RATINGS_PREPARE = "ratings-prepare"
RATINGS_TRAIN = "ratings-train"
IMAGES_TRAIN = "images-train"
IMAGES_EMBED = "images-embed"
IMAGES_INTERPOLATE = "images-interpolate"

KIND_TITLES = {
    RATINGS_PREPARE: "Ratings: prepared data",
    RATINGS_TRAIN: "Ratings: trained model",
    IMAGES_TRAIN: "Images: trained autoencoder",
    IMAGES_EMBED: "Images: latent embedding",
    IMAGES_INTERPOLATE: "Images: interpolation",
}
KINDS = tuple(KIND_TITLES)

# Artifact keys, and the file each kind of run names by default.
PREPARED = "prepared"
SUMMARY = "summary"
MODEL = "model"
METRICS = "metrics"
CHECKPOINT = "checkpoint"
LAST_CHECKPOINT = "last_checkpoint"
EMBEDDING = "embedding"
FRAMES = "frames"
RANKING = "ranking"
TRAIN_PART, VALIDATION_PART, TEST_PART = "train", "validation", "test"

FILES = {
    PREPARED: "prepared.npz",
    SUMMARY: "summary.json",
    MODEL: "model.npz",
    METRICS: METRICS_FILE,
    CHECKPOINT: "best.pt",
    LAST_CHECKPOINT: "last.pt",
    EMBEDDING: "embedding.npz",
    FRAMES: "frames.npz",
    RANKING: "ranking.npz",
}

#: Artifacts a run of each kind must name (the report relies on them).
REQUIRED_ARTIFACTS = {
    RATINGS_PREPARE: (),
    RATINGS_TRAIN: (MODEL, METRICS),
    IMAGES_TRAIN: (CHECKPOINT, METRICS),
    IMAGES_EMBED: (EMBEDDING,),
    IMAGES_INTERPOLATE: (),
}

# Tables and metrics the report reads by name.
RATING_HISTOGRAM_TABLE = "rating histogram"
RECOMMENDATIONS_TABLE = "recommendations"
RANKING_TABLE = "ranking"
RANKER_CHOICE_TABLE = "ranker choice"
BEST_ITERATION = "best_iteration"
#: Keys of a ratings-train run's ``metrics.json`` histories (History field → key).
HISTORY_KEYS = {"steps": "steps", "train_loss": "train_loss", "validation_loss": "validation_loss",
                "train_rmse": "train_rmse_history", "validation_rmse": "validation_rmse_history",
                "criterion": "criterion"}

#: Arrays of an ``images embed`` embedding file, besides one ``coords_<projection>`` per 2-D projection.
EMBEDDING_ARRAYS = ("codes", "labels", "label_names", "thumbnails")
COORDS_PREFIX = "coords_"


@dataclass
class Run:
    """A run folder as described by its ``run.json``."""

    path: Path
    kind: str
    title: str
    created: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    figures: list[dict[str, str]] = field(default_factory=list)
    artifacts: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def artifact(self, name: str) -> Path | None:
        """The path of artifact ``name`` inside the run folder, or None when the run has none."""
        value = self.artifacts.get(name)
        return self.path / value if isinstance(value, str) else None

    def metrics_file(self) -> dict[str, Any]:
        """The run's ``metrics.json`` (loss histories and the like), or ``{}``."""
        path = self.artifact(METRICS)
        if path is None or path.suffix != ".json":
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise LatentAtlasError(f"{path}: cannot read metrics file ({exc})") from None
        return data if isinstance(data, dict) else {}

    def __repr__(self) -> str:
        return f"Run({self.kind}: {self.title!r} in {str(self.path)!r}, {len(self.metrics)} metrics, " \
               f"{len(self.figures)} figures)"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        del d["path"]
        return d


def now() -> str:
    """The ``created`` stamp: UTC, to the second."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def default_dir(kind: str, root: str | os.PathLike = "runs") -> Path:
    """Where a command that trains without ``--out`` writes its run: ``runs/<kind>-<UTC time>``."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{kind}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = Path(root) / f"{kind}-{stamp}-{n}"
    return path


def figure(file: str, title: str, caption: str = "") -> dict[str, str]:
    return {"file": file, "title": title, "caption": caption}


def write_run(out_dir: str | os.PathLike, kind: str, title: str, *, config: dict | None = None,
              metrics: dict | None = None, figures: list | None = None, artifacts: dict | None = None,
              tables: dict | None = None, created: str | None = None) -> Run:
    """Write ``run.json`` into ``out_dir`` (atomically) after checking it against the contract.

    Every file it names must already be in the folder, so ``run.json`` is written last.
    """
    if kind not in KIND_TITLES:
        raise ValueError(f"unknown run kind {kind!r}")
    run = Run(path=Path(out_dir), kind=kind, title=title, created=created or now(), config=dict(config or {}),
              metrics=dict(metrics or {}), figures=list(figures or []), artifacts=dict(artifacts or {}),
              tables=dict(tables or {}))
    missing = [k for k in REQUIRED_ARTIFACTS[kind] if k not in run.artifacts]
    if missing:
        raise ValueError(f"a {kind} run must name the artifacts {', '.join(missing)}")
    absent = sorted({f for f in _listed_files(run.to_json()) if not (run.path / f).exists()})
    if absent:
        raise ValueError(f"run.json would name files that are not in {run.path}: {', '.join(absent)}")
    write_json(run.path / RUN_FILE, run.to_json())
    return run


def _listed_files(run_json: dict[str, Any]) -> list[str]:
    files = [f.get("file") for f in run_json.get("figures", []) if isinstance(f, dict)]
    for value in (run_json.get("artifacts") or {}).values():
        files.extend(value if isinstance(value, list) else [value])
    return [f for f in files if isinstance(f, str)]


def _inside(folder: Path, name: str) -> bool:
    """Whether ``name`` names a file inside ``folder`` (no absolute paths, ``..`` or links leading out)."""
    if not name or os.path.isabs(name):
        return False
    try:
        (folder / name).resolve().relative_to(folder.resolve())
    except (ValueError, OSError):
        return False
    return True


def load_run(path: str | os.PathLike) -> Run:
    """Read and check one run folder: ``run.json`` must parse, follow the contract, and every file it names
    must exist inside the folder."""
    path = Path(path)
    if not path.is_dir():
        raise LatentAtlasError(f"run directory {path} does not exist")
    meta_path = path / RUN_FILE
    if not meta_path.is_file():
        raise LatentAtlasError(f"run directory {path} is missing {RUN_FILE}")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LatentAtlasError(f"{meta_path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("kind"), str):
        raise LatentAtlasError(f"{meta_path}: has no 'kind' field")
    for key, typ in (("config", dict), ("metrics", dict), ("figures", list), ("artifacts", dict),
                     ("tables", dict)):
        if key in meta and not isinstance(meta[key], typ):
            raise LatentAtlasError(f"{meta_path}: field '{key}' must be a {'list' if typ is list else 'object'}")
    for i, fig in enumerate(meta.get("figures", [])):
        if not isinstance(fig, dict) or not isinstance(fig.get("file"), str):
            raise LatentAtlasError(f"{meta_path}: figures[{i}] has no 'file'")
    listed = _listed_files(meta)
    outside = sorted({f for f in listed if not _inside(path, f)})
    if outside:
        raise LatentAtlasError(f"{meta_path}: names files outside the run folder: {', '.join(map(repr, outside))}")
    missing = sorted({f for f in listed if not (path / f).exists()})
    if missing:
        raise LatentAtlasError(f"run directory {path}: {RUN_FILE} lists files that are missing: {', '.join(missing)}")
    return Run(path=path, kind=meta["kind"], title=str(meta.get("title") or path.name),
               created=str(meta.get("created", "")), config=dict(meta.get("config") or {}),
               metrics=dict(meta.get("metrics") or {}), figures=list(meta.get("figures") or []),
               artifacts=dict(meta.get("artifacts") or {}), tables=dict(meta.get("tables") or {}))


def load_runs(paths) -> list[Run]:
    """Every run, or one error naming all that are missing or broken."""
    if not paths:
        raise LatentAtlasError("give at least one run directory")
    runs, problems = [], []
    for p in paths:
        try:
            runs.append(load_run(p))
        except LatentAtlasError as exc:
            problems.append(str(exc))
    if problems:
        raise LatentAtlasError("; ".join(problems))
    return runs


def read_kind(path: str | os.PathLike) -> str | None:
    """The kind of the run in ``path``, or None when there is no readable ``run.json``."""
    try:
        meta = json.loads((Path(path) / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta.get("kind") if isinstance(meta, dict) else None


# --- whole-folder replacement ----------------------------------------------------------------------------
_STAGE, _OLD = ".staging-", ".replaced-"


def _stale(out: Path) -> list[Path]:
    prefix = f".{out.name}"
    try:
        return [p for p in out.parent.iterdir() if p.name.startswith(prefix + _STAGE) or
                p.name.startswith(prefix + _OLD)]
    except OSError:
        return []


def clean_stale(out: str | os.PathLike) -> None:
    """Remove the temporary siblings that a killed run left beside ``out``; if a kill came between the two
    renames of a non-atomic swap (``out`` missing, the replaced run still there), put the old run back."""
    out = Path(out)
    for p in _stale(out):
        if p.name.startswith(f".{out.name}{_OLD}") and not out.exists():
            os.replace(p, out)
            continue
        shutil.rmtree(p, ignore_errors=True)


def _check_writable(parent: Path, out: Path) -> None:
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LatentAtlasError(f"cannot create output folder {out}: {exc.strerror or exc}") from None
    if out.exists() and not out.is_dir():
        raise LatentAtlasError(f"output folder {out} exists and is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise LatentAtlasError(f"cannot write output folder {out}: {parent} is not writable")


#: Written into every folder that :func:`staged_run` creates, so that folders without ``run.json`` (projector
#: exports) are recognised as ours too.
MARKER_FILE = ".latentatlas"


def is_ours(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` may be replaced as a whole: it is empty, or it holds a ``run.json`` of a known kind
    or our marker file. Anything else belongs to the user."""
    folder = Path(folder)
    try:
        entries = [p.name for p in folder.iterdir()]
    except OSError:
        return False
    if not entries or MARKER_FILE in entries:
        return True
    return read_kind(folder) in KIND_TITLES


def check_ours(out: str | os.PathLike) -> None:
    """Refuse, in one line, an output folder that exists and is not ours (see :func:`is_ours`)."""
    out = Path(out)
    if out.is_dir() and not is_ours(out):
        raise LatentAtlasError(f"output folder {out} already exists and holds files that latentatlas did not "
                               "write; choose a new or empty folder (nothing was changed)")


def mark_ours(folder: str | os.PathLike) -> None:
    """Write the marker that makes :func:`is_ours` recognise ``folder``."""
    path = Path(folder) / MARKER_FILE
    if not path.exists():
        path.write_text("written by latentatlas: the next run into this folder replaces it as a whole\n",
                        encoding="utf-8")


def _resolved(out: Path) -> Path:
    """``out`` with symbolic links followed, so that the link and its target both survive a replacement."""
    try:
        return out.resolve(strict=False) if out.is_symlink() else out
    except (OSError, RuntimeError):
        raise LatentAtlasError(f"output folder {out}: cannot follow its symbolic link") from None


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold ``.<name>.lock`` beside ``out`` for the duration, so two runs into one folder cannot interleave;
    the second gets a one-line error at once. The lock file goes with the run."""
    import fcntl

    lock = out.parent / f".{out.name}.lock"
    for _ in range(5):
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666 & ~umask())
        except OSError as exc:
            raise LatentAtlasError(f"cannot write output folder {out}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise LatentAtlasError(f"output folder {out} is in use by another latentatlas run; wait for it to "
                                   "finish or choose another folder") from None
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except OSError:
            same = False
        if same:  # else the holder before us removed the file we opened: lock the new one
            break
        os.close(fd)
    else:
        raise LatentAtlasError(f"output folder {out} is in use by another latentatlas run")
    try:
        yield
    finally:
        try:
            os.unlink(lock)
        except OSError:
            pass
        os.close(fd)


_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 with RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    rc = fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EXDEV, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_in(stage: Path, out: Path) -> None:
    if not out.exists():
        os.replace(stage, out)
        return
    if _exchange(stage, out):  # stage now holds the old run
        shutil.rmtree(stage, ignore_errors=True)
        return
    old = out.parent / f".{out.name}{_OLD}{os.getpid()}"
    os.replace(out, old)
    os.replace(stage, out)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staged_run(out: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``out``; when the block ends without an exception, it replaces
    ``out`` as a whole. On an exception (KeyboardInterrupt included) ``out`` is left as it was.

    Only an empty folder or one of ours (:func:`is_ours`) is ever replaced; any other existing folder is
    refused before anything is written. A symbolic link is followed: its target is replaced and the link
    kept. A second run into the same folder while one is under way is refused."""
    out = _resolved(Path(out))
    parent = out.parent if str(out.parent) else Path(".")
    _check_writable(parent, out)
    check_ours(out)
    with _locked(out):
        check_ours(out)  # again under the lock: the folder may have changed while we waited
        clean_stale(out)
        try:
            stage = Path(tempfile.mkdtemp(prefix=f".{out.name}{_STAGE}", dir=parent))
        except OSError as exc:
            raise LatentAtlasError(f"cannot write output folder {out}: {exc.strerror or exc}") from None
        mode = 0o777 & ~umask()
        os.chmod(stage, mode)  # mkdtemp makes 0700; a run folder is meant to be shared like any other
        try:
            mark_ours(stage)
            yield stage
            _swap_in(stage, out)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise LatentAtlasError(f"cannot write {out}: no space left on device; the previous contents "
                                       "are unchanged") from None
            raise LatentAtlasError(f"cannot write {out}: {exc.strerror or exc}") from None
        finally:
            if stage.exists():
                shutil.rmtree(stage, ignore_errors=True)
