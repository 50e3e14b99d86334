"""Issue 10 on the recommender side: crafted files, full disks, unwritable folders — one line, nothing lost."""

import errno
import json
import os
import time
import zipfile

import numpy as np
import pytest

from latentatlas import LatentFactorModel, runs
from latentatlas.cli import run
from latentatlas.errors import LatentAtlasError
from latentatlas.fsutil import STALE_SECONDS, write_text
from latentatlas.ratings.synthetic import synthetic


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    r = synthetic(60, 40, 1200, seed=1)
    path = tmp_path_factory.mktemp("m") / "model.npz"
    LatentFactorModel(k=3, max_steps=2).fit(r).save(path)
    return path


def _rewrite(src, dst, drop=(), replace=None):
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k not in drop}
    arrays.update(replace or {})
    with open(dst, "wb") as fh:
        np.savez(fh, **arrays)
    return dst


def _meta(src):
    with np.load(src, allow_pickle=False) as z:
        return json.loads(str(z["meta"]))


@pytest.mark.parametrize("case, message", [
    ("empty", "not a readable model file"),
    ("truncated", "not a readable model file"),
    ("missing", "lacks the arrays item_factors"),
    ("shape", "item_factors has shape (40, 2), not (40, 3)"),
    ("version", "format version 99 is newer"),
    ("foreign", "not a latentatlas model file"),
    ("seen", "seen items are out of range"),
    ("params", "bad hyper-parameters in model file"),
])
def test_crafted_model_files_give_one_line(case, message, model_file, tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    if case == "empty":
        bad.write_bytes(b"")
    elif case == "truncated":
        bad.write_bytes(model_file.read_bytes()[: model_file.stat().st_size // 2])
    elif case == "missing":
        _rewrite(model_file, bad, drop=("item_factors",))
    elif case == "shape":
        _rewrite(model_file, bad, replace={"item_factors": np.zeros((40, 2), np.float32)})
    elif case == "version":
        _rewrite(model_file, bad, replace={"meta": np.array(json.dumps({**_meta(model_file), "version": 99}))})
    elif case == "foreign":
        _rewrite(model_file, bad, replace={"meta": np.array(json.dumps({"format": "something else"}))})
    elif case == "seen":
        with np.load(model_file) as z:
            seen = z["seen_items"].copy()
        seen[0] = 10_000
        _rewrite(model_file, bad, replace={"seen_items": seen})
    elif case == "params":
        meta = _meta(model_file)
        meta["params"]["k"] = -3
        _rewrite(model_file, bad, replace={"meta": np.array(json.dumps(meta))})
    with pytest.raises(LatentAtlasError) as info:
        LatentFactorModel.load(bad)
    assert message in str(info.value) and "\n" not in str(info.value) and str(bad) in str(info.value)
    capsys.readouterr()
    assert run(["ratings", "recommend", str(bad), "--user", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_a_full_disk_leaves_the_previous_run_whole(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert run(["ratings", "train", "--k", "3", "--max-steps", "2", "--quiet", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def no_space(self, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(LatentFactorModel, "save", no_space)
    capsys.readouterr()
    assert run(["ratings", "train", "--k", "4", "--max-steps", "2", "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no space left on device" in err and "unchanged" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_an_output_folder_that_cannot_be_made_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert run(["ratings", "prepare", "--builtin-size", "3000", "--quiet", "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot create output folder" in err


def test_stale_temporary_files_of_killed_runs_are_removed(tmp_path):
    stale = tmp_path / ".out.json.abc123.json"
    stale.write_text("half")
    old = time.time() - STALE_SECONDS - 5
    os.utime(stale, (old, old))
    fresh = tmp_path / ".out.json.def456.json"  # perhaps another process writing right now: kept
    fresh.write_text("half")
    write_text(tmp_path / "out.json", "{}")
    assert not stale.exists() and fresh.exists()


def test_interrupted_staging_folders_are_removed_at_the_next_run(tmp_path):
    out = tmp_path / "run"
    leftover = tmp_path / ".run.staging-xyz"
    leftover.mkdir()
    (leftover / "model.npz").write_bytes(b"half")
    with runs.staged_run(out) as stage:
        (stage / "x").write_text("1")
    assert not leftover.exists() and (out / "x").exists()
