"""Progress that suits the place: lines to logging and callbacks, one updating bar where bars are on
(notebooks by default; tests/test_notebook.py runs one), nothing in a terminal by default."""

from __future__ import annotations

import gc
import logging
import time

import pytest

import latentatlas
from latentatlas import LatentAtlasError
from latentatlas import progress as progress_module
from latentatlas.progress import (Progress, _BARS, as_progress, bars_enabled, in_notebook, lines_shown, parse_counts,
                                  set_progress)


@pytest.fixture(autouse=True)
def default_setting():
    yield
    set_progress("auto")
    with _BARS.lock:
        _BARS._close()


def test_counting_lines_are_parsed():
    c = parse_counts("als step 12/50  train rmse 0.9000")
    assert (c.key, c.n, c.total, c.description, c.rest, c.inner) == ("als step", 12, 50, "als step",
                                                                        "train rmse 0.9000", None)
    c = parse_counts("epoch 2/3 batch 5/10 loss 0.1")
    assert (c.key, c.n, c.total, c.description, c.inner) == ("epoch", 15, 30, "epoch 2/3 batch", 10)
    c = parse_counts("t-SNE of 500 codes: iteration 50/750, KL divergence 3.2")
    assert (c.key, c.n, c.total, c.rest) == ("t-SNE of 500 codes: iteration", 50, 750, "KL divergence 3.2")
    for line in ("read data/1/2.csv", "12/500.csv", "split: {'train': 80}", "0/0 done", "saved to a/b"):
        assert parse_counts(line) is None, line


def test_a_terminal_gets_no_bar_by_default(capfd, caplog):
    assert not in_notebook() and not bars_enabled()
    with caplog.at_level(logging.INFO, logger="latentatlas"):
        p = as_progress(None, "train")
        for t in (1, 2, 3):
            p(f"als step {t}/3")
    assert capfd.readouterr().err == ""
    assert [r.getMessage() for r in caplog.records] == [f"[train] als step {t}/3" for t in (1, 2, 3)]


def test_a_bar_counts_in_place_and_closes_when_complete(capfd):
    set_progress(True)
    p = as_progress(None, "train")
    for t in (1, 2, 3, 4):
        p(f"als step {t}/4  train rmse 0.{t}")
    err = capfd.readouterr().err
    assert "als step: 100%" in err and "4/4" in err and "train rmse 0.4" in err
    assert err.count("\n") == 1  # one bar, redrawn with \r, finished with one newline
    assert _BARS.bar is None


def test_two_level_counts_make_one_bar_and_the_epoch_line_after_it_adds_none(capfd):
    set_progress(True)
    p = as_progress(None, "images train")
    for epoch in (1, 2):
        for batch in (1, 2, 3):
            p(f"epoch {epoch}/2 batch {batch}/3 loss 0.1")
        p(f"epoch {epoch}/2: train MSE 0.1, test MSE 0.2")
    err = capfd.readouterr().err
    assert "6/6" in err and err.count("\n") == 1 and "epoch:" not in err


def test_a_bar_left_open_closes_when_its_reporter_is_gone(capfd):
    set_progress(True)
    p = as_progress(None, "train")
    p("als step 2/50")  # early stopping: the count never completes
    assert _BARS.bar is not None
    del p
    gc.collect()
    assert _BARS.bar is None
    assert capfd.readouterr().err.endswith("\n")


def test_ticking_shows_a_timer_that_goes_away(capfd):
    set_progress(True)
    p = as_progress(None, "model")
    with p.ticking("compiling the kernels", every=0.2):
        time.sleep(0.7)
    err = capfd.readouterr().err
    assert "compiling the kernels: 00:00" in err
    assert _BARS.bar is None
    with p.ticking("fast", delay=5.0):  # over before its delay: nothing at all
        pass
    assert capfd.readouterr().err == ""


def test_bars_can_be_turned_off_globally_per_call_and_by_a_callback(capfd):
    set_progress(False)
    as_progress(None, "a")("als step 1/2")
    set_progress(True)
    as_progress(False, "b")("als step 1/2")  # progress=False
    lines = []
    as_progress(lines.append, "c")("als step 1/2")  # a callback replaces the bar
    Progress("d", quiet=True)("als step 1/2")
    Progress("e", callback=Progress("job", bar=False))("als step 1/2")  # a step of a job without bars
    assert capfd.readouterr().err == ""
    assert lines == ["[c] als step 1/2"]
    with pytest.raises(LatentAtlasError, match="True, False or 'auto'"):
        set_progress("yes")
    with pytest.raises(LatentAtlasError, match="must be a callable"):
        as_progress(42)


def test_set_progress_is_public():
    assert latentatlas.set_progress is set_progress
    assert "set_progress" in latentatlas.__all__


def test_where_logging_shows_the_lines_a_notebook_gets_no_bar_beside_them(monkeypatch):
    monkeypatch.setattr(progress_module, "in_notebook", lambda: True)
    assert not lines_shown() and bars_enabled()
    log = logging.getLogger("latentatlas")
    handler = logging.StreamHandler()
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        assert lines_shown() and not bars_enabled()
        set_progress(True)
        assert bars_enabled()  # asked for explicitly
    finally:
        log.removeHandler(handler)
        log.setLevel(logging.NOTSET)
    assert not lines_shown()


def test_a_bar_that_cannot_be_drawn_never_breaks_the_work(monkeypatch, capfd):
    import tqdm.auto

    def refuse(*args, **kwargs):
        raise ImportError("IProgress not found")

    monkeypatch.setattr(tqdm.auto, "tqdm", refuse)
    monkeypatch.setattr(_BARS, "broken", False)
    set_progress(True)
    p = as_progress(None, "train")
    p("als step 1/2")
    with p.ticking("compiling"):
        pass
    p("als step 2/2")
    assert _BARS.broken and _BARS.bar is None and capfd.readouterr().err == ""
