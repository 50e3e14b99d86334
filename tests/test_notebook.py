"""A notebook, executed in a real IPython kernel (nbclient): figures come back as pictures without
``%matplotlib inline``, reprs are short, slow steps show one bar, and nothing global changes."""

from __future__ import annotations

import re

import nbformat
import pytest
from nbclient import NotebookClient

CELLS = {
    "setup": """
import sys, matplotlib
rc_before = dict(dict.items(matplotlib.rcParams))
backend_before = matplotlib.rcParams._get_backend_or_none()
import latentatlas
from latentatlas import LatentFactorModel, prepare_ratings
from latentatlas.ratings.names import Names
data = prepare_ratings(builtin_size=5000)
names = Names([1, 2, 3], ["Toy Story (1995)", "Heat (1995)", "Toy Story 2 (1999)"], meta={"source": "movies.csv"})
""",
    "ratings": "data.ratings",
    "prepared": "data",
    "split": "data.split",
    "names": "names",
    "search": "names.search('toy story').tolist(), names.find('heat')",
    "histogram": "from latentatlas.plots.ratings import rating_histogram\nrating_histogram(data.ratings)",
    "fit": "model = LatentFactorModel(k=4, max_steps=3, seed=0).fit(data.split.train, validation=data.split.validation)",
    "curves": "from latentatlas.plots.ratings import loss_curves\nloss_curves(model.history_, 'rmse')",
    "state": """
changed = [k for k, v in dict.items(matplotlib.rcParams) if rc_before[k] != v]
print("matplotlib.pyplot" in sys.modules, matplotlib.rcParams._get_backend_or_none() == backend_before, changed)
""",
    "quiet": """
latentatlas.set_progress(False)
try:
    LatentFactorModel(k=4, max_steps=2, seed=0).fit(data.split.train)
finally:
    latentatlas.set_progress("auto")
""",
    "logged": """
import logging
handler = logging.StreamHandler(sys.stderr)
logging.getLogger("latentatlas").addHandler(handler)
logging.getLogger("latentatlas").setLevel(logging.INFO)
try:
    LatentFactorModel(k=4, max_steps=2, seed=0).fit(data.split.train)
finally:
    logging.getLogger("latentatlas").removeHandler(handler)
    logging.getLogger("latentatlas").setLevel(logging.NOTSET)
""",
    "after_pyplot": "import matplotlib.pyplot\nrating_histogram(data.ratings)",
}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src.strip(), metadata={"name": name}) for name, src in CELLS.items()]
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path_factory.mktemp("nb"))}}).execute()
    return {cell.metadata["name"]: cell.outputs for cell in nb.cells}


def _result(outs) -> dict:
    results = [o for o in outs if o.output_type == "execute_result"]
    assert len(results) == 1, outs
    return results[0]["data"]


def _stderr(outs) -> str:
    return "".join(o.text for o in outs if o.output_type == "stream" and o.name == "stderr")


def test_figures_come_back_as_png_without_the_matplotlib_magic(outputs):
    for cell in ("histogram", "curves", "after_pyplot"):
        data = _result(outputs[cell])
        assert "image/png" in data, (cell, list(data))
        assert len(data["image/png"]) > 1000  # base64 of a real picture


def test_reprs_are_short_and_tables_come_as_html(outputs):
    texts = {cell: _result(outputs[cell])["text/plain"] for cell in ("ratings", "prepared", "split", "names")}
    for cell, text in texts.items():
        assert len(text) < 200, (cell, text)
        assert "array(" not in text, (cell, text)
    assert re.fullmatch(r"Ratings\(\d+ users × \d+ items, [\d,]+ ratings, 1–5\)", texts["ratings"])
    assert texts["names"].startswith("Names(3 names")
    for cell in ("ratings", "prepared", "split", "names"):
        assert "<table>" in _result(outputs[cell])["text/html"]
    assert _result(outputs["search"])["text/plain"] == "([1, 3], 2)"


def test_a_fit_shows_one_updating_bar_and_set_progress_turns_it_off(outputs):
    bar = _stderr(outputs["fit"])
    assert re.search(r"als \w+: +\d+%\|.*\| *3/3", bar), bar  # tqdm's text bar, complete at step 3 of 3
    assert "\r" in bar  # one bar redrawn in place, not a line per step
    assert "[" not in bar.split("|")[0]  # no log lines ("[train] ...") beside it: logging stays quiet
    assert _stderr(outputs["quiet"]) == ""
    logged = _stderr(outputs["logged"])  # logging asked for the lines: lines, no bar beside them
    assert "als step 2/2" in logged and "%|" not in logged and "\r" not in logged
    assert not [o for o in outputs["fit"] if o.output_type == "error"]


def test_the_library_changes_no_global_matplotlib_state_in_a_kernel(outputs):
    printed = "".join(o.text for o in outputs["state"] if o.output_type == "stream" and o.name == "stdout")
    assert printed.split() == ["False", "True", "[]"]  # no pyplot, the same backend, no rcParams changed
