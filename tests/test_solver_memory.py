"""Memory of the ALS/SGD fits at their defaults (issue 16): the inner hold-out is a mask over the given
ratings rather than a copy, the best factors so far and the early-stopped model wait in a temporary file when
large, and the refit trains on the given ratings as they are. Each is checked against what it replaces."""

import numpy as np
import pytest

from latentatlas.ratings import model as model_module
from latentatlas.ratings import prep
from latentatlas.ratings.data import Ratings
from latentatlas.ratings.kernels import als, sgd
from latentatlas.ratings.model import LatentFactorModel
from latentatlas.ratings.synthetic import synthetic


@pytest.fixture(scope="module")
def ratings():
    return synthetic(150, 90, 4000, seed=11)


@pytest.fixture(scope="module")
def mask(ratings):
    return np.random.default_rng(3).random(len(ratings)) > 0.2


# --- the layouts from a mask are the layouts of the copy ------------------------------------------------------
def test_masked_layouts_equal_the_layouts_of_the_kept_ratings(ratings, mask):
    r, kept = ratings, ratings.take(mask)
    for values, dtype in ((r.values, np.float32), (None, None)):
        got = als.compressed(r.users, r.items, values, r.n_users, dtype or np.float32, n_cols=r.n_items, keep=mask)
        want = als.compressed(kept.users, kept.items, None if values is None else kept.values, r.n_users,
                              dtype or np.float32, n_cols=r.n_items)
        for a, b in zip(got, want):
            assert (a is None and b is None) or (a.dtype == b.dtype and np.array_equal(a, b))
    np.testing.assert_array_equal(als.masked_counts(r.items, r.n_items, mask), np.bincount(kept.items, minlength=r.n_items))
    got = sgd.block_layout(r.users, r.items, r.values, r.n_users, r.n_items, 3, np.random.default_rng(4), mask)
    want = sgd.block_layout(kept.users, kept.items, kept.values, r.n_users, r.n_items, 3, np.random.default_rng(4))
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    got = als.damped_biases(r.users, r.items, r.values, r.n_users, r.n_items, 5.0, 5.0, 10, mask)
    want = als.damped_biases(kept.users, kept.items, kept.values, r.n_users, r.n_items, 5.0, 5.0, 10)
    assert got[0] == want[0] and np.array_equal(got[1], want[1]) and np.array_equal(got[2], want[2])


def test_the_held_out_positions_are_prep_splits_draw(ratings):
    held_out = model_module._held_out_positions(len(ratings), 400, seed=7)
    keep = model_module._kept(len(ratings), held_out)
    inner = prep.split(ratings, 400, 0, seed=7)
    assert len(held_out) == 400 and np.all(np.diff(held_out) > 0) and (~keep).sum() == 400
    np.testing.assert_array_equal(ratings.users[keep], inner.train.users)
    np.testing.assert_array_equal(ratings.values[held_out], inner.validation.values)
    np.testing.assert_array_equal(ratings.items[held_out], inner.validation.items)


def test_held_out_ratings_are_scored_where_they_are(ratings):
    held_out = model_module._held_out_positions(len(ratings), 700, seed=1)
    rng = np.random.default_rng(0)
    Q = rng.random((ratings.n_users, 6)).astype(np.float32)
    P = rng.random((ratings.n_items, 6)).astype(np.float32)
    values = ratings.values[held_out] - 3
    got = als.indexed_sse(held_out, ratings.users, ratings.items, values, Q, P, 7)
    want = als.triplet_sse(ratings.users[held_out], ratings.items[held_out], values, Q, P, 7)
    brute = float(((values - np.einsum("ij,ij->i", Q[ratings.users[held_out]].astype(np.float64),
                                       P[ratings.items[held_out]].astype(np.float64))) ** 2).sum())
    assert got == want and got == pytest.approx(brute, rel=1e-6)


# --- the fit at its defaults ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [dict(solver="als"), dict(solver="sgd"), dict(solver="als", als_method="cholesky"),
                                dict(solver="als", center="user"), dict(solver="sgd", sgd_schedule="serial"),
                                dict(solver="als", dtype="float64")])
def test_early_stopping_on_the_inner_hold_out_is_the_fit_on_a_split_by_hand(ratings, kw):
    kw = dict(k=5, max_steps=6, patience=2, seed=2, **kw)
    m = LatentFactorModel(**kw, refit=False).fit(ratings)
    inner = prep.split(ratings, int(round(0.1 * len(ratings))), 0, seed=2)
    ref = LatentFactorModel(**kw, refit=False).fit(inner.train, inner.validation)
    assert m.history_.steps == ref.history_.steps and m.history_.train_rmse == ref.history_.train_rmse
    assert m.history_.validation_rmse == ref.history_.validation_rmse
    np.testing.assert_array_equal(m.user_factors_, ref.user_factors_)
    np.testing.assert_array_equal(m.seen_items_, ref.seen_items_)
    assert m.scale_ == ref.scale_ and m.mu_ == ref.mu_
    np.testing.assert_array_equal(m.user_bias_, ref.user_bias_)
    np.testing.assert_array_equal(m.item_bias_, ref.item_bias_)
    # with the refit: best_step steps on the given ratings, in their order
    refit = LatentFactorModel(**kw).fit(ratings)
    assert refit.history_.refit_steps == ref.history_.best_step > 0
    everything = LatentFactorModel(**{**kw, "max_steps": ref.history_.best_step}, validation_fraction=0).fit(ratings)
    np.testing.assert_array_equal(refit.user_factors_, everything.user_factors_)
    np.testing.assert_array_equal(refit.item_factors_, everything.item_factors_)
    np.testing.assert_array_equal(refit.seen_items_, everything.seen_items_)


# --- parked arrays: the temporary file gives back the same bits -----------------------------------------------
@pytest.fixture
def park_on_disk(monkeypatch):
    monkeypatch.setattr(model_module, "PARK_IN_MEMORY_MAX", 0)


def test_parked_arrays_come_back_bit_for_bit(park_on_disk):
    rng = np.random.default_rng(0)
    parked = model_module._Parked()
    a, b = rng.random((30, 4)).astype(np.float32), np.arange(7)
    parked.put({"a": a, "b": b, "none": None})
    parked.put({"a": a * 2, "b": b})  # the later put replaces the earlier
    back = parked.get()
    assert set(back) == {"a", "b"} and back["a"].dtype == np.float32
    np.testing.assert_array_equal(back["a"], a * 2)
    np.testing.assert_array_equal(back["b"], b)
    parked.close()
    assert parked.get() == {}


def test_parking_falls_back_to_memory_without_a_writable_temporary_directory(monkeypatch, park_on_disk):
    def no_room(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(model_module.tempfile, "TemporaryFile", no_room)
    parked = model_module._Parked()
    a = np.arange(12.0).reshape(3, 4)
    parked.put({"a": a})
    a += 1  # the parked copy is a copy
    np.testing.assert_array_equal(parked.get()["a"], np.arange(12.0).reshape(3, 4))
    target = np.zeros((3, 4))
    assert parked.get(into={"a": target})["a"] is target and target[2, 3] == 11


@pytest.mark.parametrize("solver", ["als", "sgd"])
def test_best_factors_restored_from_the_file_as_from_memory(ratings, solver, monkeypatch):
    split = prep.split(ratings, 500, 0, seed=1)
    kw = dict(k=4, solver=solver, max_steps=12, patience=3, refit=False, seed=1, lr=0.05)
    in_memory = LatentFactorModel(**kw).fit(split.train, split.validation)
    monkeypatch.setattr(model_module, "PARK_IN_MEMORY_MAX", 0)
    on_disk = LatentFactorModel(**kw).fit(split.train, split.validation)
    assert on_disk.history_.best_step < on_disk.history_.stopped_at  # the best was not the last step
    np.testing.assert_array_equal(on_disk.user_factors_, in_memory.user_factors_)
    np.testing.assert_array_equal(on_disk.item_factors_, in_memory.item_factors_)
    best = LatentFactorModel(**{**kw, "max_steps": in_memory.history_.best_step}).fit(split.train, split.validation)
    np.testing.assert_array_equal(on_disk.user_factors_, best.user_factors_)


def test_ctrl_c_during_the_refit_restores_the_early_stopped_model_from_the_file(ratings, park_on_disk):
    def interrupt_in_refit(line):
        if "refit step 2" in line:
            raise KeyboardInterrupt

    kw = dict(k=5, max_steps=5, patience=10, dtype="float64", seed=2)
    early = LatentFactorModel(**kw, refit=False).fit(ratings)
    m = LatentFactorModel(**kw, progress=interrupt_in_refit)
    with pytest.raises(KeyboardInterrupt):
        m.fit(ratings)
    assert m.history_.interrupted and m.history_.steps == early.history_.steps
    for name in ("user_factors_", "item_factors_", "seen_indptr_", "seen_items_", "user_bias_"):
        np.testing.assert_array_equal(getattr(m, name), getattr(early, name))
    assert len(m.seen_items_) == len(ratings) - int(round(0.1 * len(ratings)))  # the first phase's ratings


def test_an_error_in_the_refit_keeps_the_early_stopped_model(ratings, monkeypatch):
    kw = dict(k=5, max_steps=4, patience=10, seed=2)
    early = LatentFactorModel(**kw, refit=False).fit(ratings)
    m = LatentFactorModel(**kw)
    calls = []
    real = LatentFactorModel._fit

    def failing_second_run(self, *a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise MemoryError("no room for the refit")
        return real(self, *a, **k)

    monkeypatch.setattr(LatentFactorModel, "_fit", failing_second_run)
    with pytest.raises(MemoryError):
        m.fit(ratings)
    np.testing.assert_array_equal(m.user_factors_, early.user_factors_)
    assert m.history_.steps == early.history_.steps and not m.history_.interrupted
