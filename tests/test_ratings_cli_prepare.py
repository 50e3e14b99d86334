import json

import numpy as np

from latentatlas.ratings.prep import Split


def test_prepare_builtin_json_summary(tmp_path, run_cli):
    res = run_cli("ratings", "prepare", "--json", "--builtin-size", "20000", "--out", tmp_path / "p")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    for key in ("users", "items", "ratings", "duplicates", "shape_before", "shape_after", "histogram", "split"):
        assert key in summary
    assert summary["ratings"] == sum(summary["split"].values()) == sum(summary["histogram"].values())
    split = Split.load(tmp_path / "p" / "prepared.npz")
    assert split.sizes() == summary["split"]
    assert split.train.user_counts().sum() == summary["split"]["train"]
    run = json.loads((tmp_path / "p" / "run.json").read_text())
    assert run["kind"] == "ratings-prepare" and run["metrics"]["ratings"] == summary["ratings"]


def test_prepare_file_filters_and_leaves_input_untouched(tmp_path, run_cli):
    lines = ["userId,movieId,rating,timestamp"]
    rng = np.random.default_rng(0)
    for u in range(40):
        for i in rng.choice(30, 8, replace=False):
            lines.append(f"{u},{i},{rng.integers(1, 6)},0")
    lines.append("999,0,5,0")  # a cold-start user with one rating
    lines.append("0,0,1,0")  # may repeat a pair: counted as a duplicate if it does
    f = tmp_path / "ratings.csv"
    f.write_text("\n".join(lines) + "\n")
    before = f.read_bytes()
    res = run_cli("ratings", "prepare", f, "--min-entries", "2", "--n-validation", "20", "--n-test", "30",
                  "--json", "--out", tmp_path / "out")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["shape_before"][0] == 41 and summary["shape_after"][0] == 40
    assert summary["split"]["validation"] == 20 and summary["split"]["test"] == 30
    assert f.read_bytes() == before


def test_prepare_bad_input_is_one_line_and_exit_2(tmp_path, run_cli):
    f = tmp_path / "ratings.csv"
    f.write_text("userId,movieId,rating\n1,2,4\n1,3,four\n")
    res = run_cli("ratings", "prepare", f, "--out", tmp_path / "out")
    assert res.returncode == 2
    assert res.stderr.strip() == f"latentatlas: error: {f}: line 3: rating 'four' is not a number"
    assert not (tmp_path / "out" / "prepared.npz").exists()
    res = run_cli("ratings", "prepare", tmp_path / "missing.csv")
    assert res.returncode == 2 and "missing.csv: no such file" in res.stderr
