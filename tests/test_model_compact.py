"""Compact model files (issue 16): names as variable-length UTF-8, and a ``bayes`` model as posterior means,
variances and a low-rank correction instead of every stored sample; files of the older forms still load."""

import json

import numpy as np
import pytest

from latentatlas import LatentFactorModel
from latentatlas.errors import LatentAtlasError
from latentatlas.fsutil import save_npz
from latentatlas.ratings import prep
from latentatlas.ratings.bayes import gibbs_fit
from latentatlas.ratings.names import Names
from latentatlas.ratings.synthetic import synthetic

BAYES = dict(solver="bayes", k=6, n_samples=20, burn_in=5, seed=1, implicit="both")


@pytest.fixture(scope="module")
def split():
    return prep.split(synthetic(300, 200, 8000, seed=4), validation_fraction=0.1, test_fraction=0.1, seed=0)


def _names(ids, rng=None):
    """Names with non-ASCII, empty and long entries, and a text column."""
    words = ["Amélie", "", "Крёстный отец", "千と千尋の神隠し", "Toy Story (1995)", "x" * 300, "naïve café ☕"]
    names = np.array([words[j % len(words)] + ("" if j % len(words) == 1 else f" {j}") for j in range(len(ids))])
    genres = np.array(["Drama|Comédie" if j % 3 else "" for j in range(len(ids))])
    return Names(ids, names, {"genres": genres, "year": np.arange(len(ids)) + 1900}, {"source": "test"})


def _pairs(r):
    X = np.empty((len(r), 2), dtype=object)
    X[:, 0], X[:, 1] = r.user_ids[r.users], r.item_ids[r.items]
    return X


def _rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


@pytest.fixture(scope="module")
def bayes_model(split):
    model = LatentFactorModel(**BAYES).fit(split.train)
    model.set_names(items=_names(model.item_ids_), users=_names(model.user_ids_.astype(str)))
    return model


# --- names --------------------------------------------------------------------------------------------------
def test_names_round_trip_as_utf8_with_non_ascii_and_empty_names(tmp_path):
    names = _names(np.array(["u-ä", "", "b", "日本", "e", "f", "g", "h"]))
    arrays = names.to_arrays(prefix="item_names_")
    assert all(a.dtype.kind != "U" for a in arrays.values() if a.ndim)  # no fixed-width text left
    assert arrays["item_names_names_utf8"].dtype == np.uint8
    save_npz(tmp_path / "n.npz", **arrays)
    with np.load(tmp_path / "n.npz", allow_pickle=False) as z:
        back = Names.from_arrays(z, prefix="item_names_")
    assert back.ids.tolist() == names.ids.tolist() and back.names.tolist() == names.names.tolist()
    assert back.names[1] == "" and back.ids[1] == ""
    assert back.metadata["genres"].tolist() == names.metadata["genres"].tolist()
    np.testing.assert_array_equal(back.metadata["year"], names.metadata["year"])
    assert back.lookup(["日本"]).tolist() == [names.names[3]]


def test_names_of_the_older_fixed_width_form_still_read(tmp_path):
    names = _names(np.arange(5))
    info = {"source": "test", "format": "latentatlas.names", "columns": ["genres", "year"]}
    save_npz(tmp_path / "old.npz", item_names_ids=names.ids, item_names_names=names.names,
             item_names_meta=np.array(json.dumps(info)), item_names_col0=names.metadata["genres"],
             item_names_col1=names.metadata["year"])
    with np.load(tmp_path / "old.npz", allow_pickle=False) as z:
        back = Names.from_arrays(z, prefix="item_names_")
    assert back.names.tolist() == names.names.tolist() and back.metadata["genres"].tolist() == names.metadata["genres"].tolist()


def test_damaged_text_offsets_are_a_one_line_error(tmp_path):
    arrays = _names(np.arange(4)).to_arrays(prefix="item_names_")
    arrays["item_names_names_offsets"] = arrays["item_names_names_offsets"][::-1].copy()
    save_npz(tmp_path / "bad.npz", **arrays)
    with np.load(tmp_path / "bad.npz", allow_pickle=False) as z, pytest.raises(LatentAtlasError) as err:
        Names.from_arrays(z, prefix="item_names_")
    assert "damaged" in str(err.value) and "\n" not in str(err.value)


def test_stored_names_take_at_most_one_and_a_half_times_their_utf8_size():
    names = _names(np.arange(5000))
    arrays = names.to_arrays(prefix="item_names_")
    stored = sum(a.nbytes for key, a in arrays.items() if not key.endswith("meta"))
    utf8 = sum(len(s.encode()) for s in names.names.tolist()) + sum(len(s.encode()) for s in
                                                                     names.metadata["genres"].tolist())
    utf8 += names.ids.nbytes + names.metadata["year"].nbytes
    assert stored <= 1.5 * utf8, (stored, utf8)


# --- the compact bayes model ---------------------------------------------------------------------------------
def test_compact_bayes_round_trip_keeps_predictions_std_and_fold_in(bayes_model, split, tmp_path):
    m = bayes_model
    assert m.bayes_.form == "compact" and m.user_factors_.shape == (m.n_users_, 6 + m.bayes_.rank)
    np.testing.assert_array_equal(m.user_embeddings_, m.user_factors_[:, :6])
    m.save(tmp_path / "b.npz")
    with np.load(tmp_path / "b.npz", allow_pickle=False) as z:  # nothing per sample in the file
        assert all(z[name].ndim < 2 or z[name].shape[1] <= 7 for name in z.files if name.startswith("bayes_"))
        assert z["user_factors"].shape == (m.n_users_, 12)
    back = LatentFactorModel.load(tmp_path / "b.npz")
    X = _pairs(split.test)
    pred, std = m.predict(X, return_std=True)
    pred2, std2 = back.predict(X, return_std=True)
    np.testing.assert_array_equal(pred, pred2)
    np.testing.assert_array_equal(std, std2)
    assert np.all(std > 0)
    items = m.item_ids_[[2, 7, 11]]
    fa, fb = m.fold_in(items, [5, 1, 4]), back.fold_in(items, [5, 1, 4])
    np.testing.assert_array_equal(fa.factors, fb.factors)
    assert fa.bias == fb.bias
    ids, _ = back.recommend(fb, 5)
    assert len(ids) == 5 and not set(ids) & set(items)
    assert back.item_names_.names.tolist() == m.item_names_.names.tolist()


def test_compact_form_is_a_bounded_approximation_of_the_sample_average(split):
    t, v = split.train, split.validation
    full = gibbs_fit(t.users, t.items, t.values, t.n_users, t.n_items, k=6, n_samples=30, burn_in=10,
                     implicit="both", seed=1)
    small = full.compact()
    assert small.width == 12 and full.width == 6 * full.n_stored
    pf, pc = full.predict(v.users, v.items), small.predict(v.users, v.items)
    assert _rmse(pf, pc) < 0.1  # the correction beyond rank k is mostly Monte Carlo noise of the average
    assert _rmse(pc, v.values) < _rmse(pf, v.values) + 0.005
    # and closer to the sample average than the product of posterior means alone
    assert _rmse(pc, pf) < _rmse(full.compact(rank=0).predict(v.users, v.items), pf)
    # the predictive std reads only means and variances: the same up to float32 rounding
    np.testing.assert_allclose(small.predict_std(v.users, v.items), full.predict_std(v.users, v.items), rtol=1e-5)
    # fold_in: the expected normal equations against one solve per stored sample
    u = int(np.bincount(t.users).argmax())
    mine = t.users == u
    scores = []
    for fit in (full, small):
        bias, q = fit.fold_in(t.items[mine], t.values[mine])
        scores.append(fit.mu + bias + fit.item_bias + fit.item_factors @ q)
    assert _rmse(*scores) < 0.1 and np.corrcoef(*scores)[0, 1] > 0.99
    assert _rmse(scores[1][t.items[mine]], small.predict(np.full(mine.sum(), u), t.items[mine])) < 0.15


def test_model_files_with_every_sample_still_load(bayes_model, split, tmp_path):
    """A file as written before the compact form: stacked samples, separate factor means, no form/rank, and
    fixed-width names."""
    t = split.train
    full = gibbs_fit(t.users, t.items, t.values, t.n_users, t.n_items, k=6, n_samples=20, burn_in=5,
                     implicit=bayes_model.bayes_.implicit, seed=1)  # as the fixture's model, to compare with it
    bayes_model.save(tmp_path / "new.npz")
    with np.load(tmp_path / "new.npz", allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        arrays = {name: z[name] for name in ("user_ids", "item_ids", "seen_indptr", "seen_items")}
    meta["bayes"] = {name: getattr(full, name) for name in ("n_stored", "noise_precision", "noise_variance", "k",
                                                            "implicit", "noise", "n_kept", "burn_in", "seed")}
    meta["mu"] = full.mu
    state = {f"bayes_{name}": getattr(full, name) for name in (
        "user_factor_mean", "item_factor_mean", "user_var", "item_var", "user_prior_mean", "user_prior_precision",
        "implicit_user", "user_noise", "item_noise")}
    names = bayes_model.item_names_
    info = {"format": "latentatlas.names", "columns": list(names.metadata)}
    old_names = {"item_names_ids": names.ids, "item_names_names": names.names,
                 "item_names_meta": np.array(json.dumps(info)),
                 **{f"item_names_col{k}": col for k, col in enumerate(names.metadata.values())}}
    save_npz(tmp_path / "old.npz", user_factors=full.user_factors, item_factors=full.item_factors,
             user_bias=full.user_bias, item_bias=full.item_bias, **arrays, **state, **old_names,
             meta=np.array(json.dumps(meta)))
    old = LatentFactorModel.load(tmp_path / "old.npz")
    assert old.bayes_.form == "samples" and old.user_factors_.shape[1] == 6 * full.n_stored
    X = _pairs(split.test)
    pred, std = old.predict(X, return_std=True)
    np.testing.assert_allclose(pred, np.clip(full.predict(split.test.users, split.test.items), 1, 5), atol=1e-6)
    np.testing.assert_allclose(std, full.predict_std(split.test.users, split.test.items), rtol=1e-12)
    assert old.item_names_.names.tolist() == names.names.tolist()
    # the compact model of the same chain answers nearly the same
    assert _rmse(pred, bayes_model.predict(X)) < 0.1
    np.testing.assert_allclose(std, bayes_model.predict(X, return_std=True)[1], rtol=1e-5)
    # and re-saving an old model keeps its form
    old.save(tmp_path / "again.npz")
    np.testing.assert_array_equal(LatentFactorModel.load(tmp_path / "again.npz").predict(X), pred)


def test_bayes_file_is_at_most_three_times_the_als_file_with_the_same_k(bayes_model, split, tmp_path):
    als = LatentFactorModel(k=6, max_steps=3, seed=1).fit(split.train)
    als.set_names(items=bayes_model.item_names_, users=bayes_model.user_names_)
    a, b = als.save(tmp_path / "als.npz"), bayes_model.save(tmp_path / "bayes.npz")
    assert b.stat().st_size <= 3 * a.stat().st_size, (b.stat().st_size, a.stat().st_size)
    bare_a = LatentFactorModel(k=6, max_steps=3, seed=1).fit(split.train).save(tmp_path / "als-bare.npz")
    bare_b = LatentFactorModel(**BAYES).fit(split.train).save(tmp_path / "bayes-bare.npz")
    assert bare_b.stat().st_size <= 3 * bare_a.stat().st_size, (bare_b.stat().st_size, bare_a.stat().st_size)
