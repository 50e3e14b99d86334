"""Nothing the user owns is deleted: an output folder is replaced only when it is one of our run folders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from latentatlas import runs
from latentatlas.errors import LatentAtlasError

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args, cwd=None):
    exe = Path(sys.executable).with_name("latentatlas")
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_a_folder_of_the_users_is_refused_and_kept(tmp_path):
    out = tmp_path / "proj"
    (out / "sub").mkdir(parents=True)
    (out / "good.csv").write_text("1,2,3\n")
    (out / "sub" / "notes.txt").write_text("mine")
    with pytest.raises(LatentAtlasError, match="did not write"):
        with runs.staged_run(out) as stage:
            (stage / "x").write_text("1")
    assert (out / "good.csv").read_text() == "1,2,3\n" and (out / "sub" / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"]  # no staging or lock file left


def test_an_empty_folder_and_our_own_run_are_replaced(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with runs.staged_run(out) as stage:
        (stage / "a.txt").write_text("first")
    assert runs.is_ours(out)
    with runs.staged_run(out) as stage:
        (stage / "b.txt").write_text("second")
    assert (out / "b.txt").exists() and not (out / "a.txt").exists()


def test_a_run_folder_with_run_json_is_ours(tmp_path):
    out = tmp_path / "old"
    out.mkdir()
    (out / "run.json").write_text('{"kind": "ratings-train"}')
    assert runs.is_ours(out)
    (out / "run.json").write_text('{"kind": "something-else"}')
    assert not runs.is_ours(out)


def test_a_symlinked_out_keeps_the_link_and_replaces_the_target(tmp_path):
    target = tmp_path / "real"
    with runs.staged_run(target) as stage:
        (stage / "a.txt").write_text("old")
    link = tmp_path / "link"
    link.symlink_to(target)
    with runs.staged_run(link) as stage:
        (stage / "a.txt").write_text("new")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert (target / "a.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]


def test_a_second_run_into_a_folder_in_use_is_refused_and_harms_nothing(tmp_path):
    out = tmp_path / "run"
    with runs.staged_run(out) as first:
        (first / "a.txt").write_text("first")
        with pytest.raises(LatentAtlasError, match="in use"):
            with runs.staged_run(out) as second:
                (second / "b.txt").write_text("second")
        assert (first / "a.txt").exists()  # the live staging folder survived
    assert (out / "a.txt").read_text() == "first"


def test_cli_prepare_into_the_folder_holding_its_input_deletes_nothing(tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    rows = "".join(f"{u},{i},{(u * i) % 5 + 1}\n" for u in range(12) for i in range(10))
    (proj / "good.csv").write_text("user,item,rating\n" + rows)
    r = _cli("ratings", "prepare", proj / "good.csv", "--out", proj)
    assert r.returncode == 2, r.stderr
    error = [line for line in r.stderr.splitlines() if "error" in line]
    assert len(error) == 1 and "did not write" in error[0]
    assert [p.name for p in proj.iterdir()] == ["good.csv"]
    # The current directory is refused the same way.
    r = _cli("ratings", "prepare", "good.csv", "--out", ".", cwd=proj)
    assert r.returncode == 2 and (proj / "good.csv").exists()
