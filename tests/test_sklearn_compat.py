"""The recommenders follow scikit-learn's estimator protocol without importing scikit-learn (issue 16: the
import alone pulled in pandas, pyarrow and scipy.stats, about 130 MB of a 10 M-rating fit)."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from latentatlas import EASE, LatentFactorModel, Recommender
from latentatlas.ratings.synthetic import synthetic


def _modules_after(code: str) -> set[str]:
    probe = textwrap.dedent(code) + textwrap.dedent("""
        import sys
        print(" ".join(sorted(name for name in ("sklearn", "pandas", "pyarrow", "scipy.stats") if name in sys.modules)))
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_importing_the_rating_models_loads_neither_sklearn_nor_pandas():
    assert _modules_after("import latentatlas, latentatlas.ratings") == set()
    assert _modules_after("import latentatlas.ratings.model, latentatlas.ratings.als, latentatlas.ratings.sgd") == set()
    assert _modules_after("from latentatlas import LatentFactorModel, Ratings; LatentFactorModel(k=3)") == set()


def test_a_fit_and_predict_load_no_sklearn():
    code = """
        from latentatlas import LatentFactorModel
        from latentatlas.ratings.synthetic import synthetic
        r = synthetic(40, 30, 600, seed=0)
        m = LatentFactorModel(k=3, max_steps=3).fit(r)
        m.predict(r)
        m.recommend(int(r.user_ids[0]), n=3)
    """
    assert "sklearn" not in _modules_after(code)


@pytest.fixture(scope="module")
def Xy():
    r = synthetic(80, 60, 1500, seed=3)
    return np.column_stack([r.user_ids[r.users], r.item_ids[r.items]]), r.values.astype(np.float64)


def test_params_repr_and_clone_as_scikit_learn_defines_them():
    from sklearn.base import clone, is_regressor

    m = LatentFactorModel(k=7, solver="sgd", validation_fraction=0.2)
    assert repr(m) == "LatentFactorModel(k=7, solver='sgd', validation_fraction=0.2)"
    assert repr(LatentFactorModel()) == "LatentFactorModel()"
    assert sorted(m.get_params()) == sorted(LatentFactorModel._PARAMS + ("progress",))
    c = clone(m)
    assert type(c) is LatentFactorModel and c is not m and c.get_params() == m.get_params()
    assert is_regressor(m) and not is_regressor(EASE())
    with pytest.raises(ValueError, match="Invalid parameter 'kk'"):
        m.set_params(kk=3)
    # nested estimators: deep parameters and name__param
    rec = Recommender(rating_model=LatentFactorModel(k=4))
    assert rec.get_params()["rating_model__k"] == 4
    rec.set_params(rating_model__k=9)
    assert rec.rating_model.k == 9 and clone(rec).rating_model.k == 9


def test_grid_search_pipeline_and_score(Xy):
    from sklearn.metrics import r2_score
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, y = Xy
    grid = GridSearchCV(LatentFactorModel(max_steps=4), {"k": [2, 5]}, cv=KFold(3, shuffle=True, random_state=0))
    grid.fit(X, y)
    assert grid.best_params_["k"] in (2, 5) and np.isfinite(grid.best_score_)
    m = grid.best_estimator_
    assert m.score(X, y) == pytest.approx(r2_score(y, m.predict(X)))  # the default score is R²
    pipe = make_pipeline(FunctionTransformer(lambda a: a), LatentFactorModel(k=3, max_steps=3)).fit(X, y)
    np.testing.assert_allclose(pipe.predict(X[:5]), LatentFactorModel(k=3, max_steps=3).fit(X, y).predict(X[:5]))


def test_not_fitted_is_scikit_learns_error_and_ours():
    from sklearn.exceptions import NotFittedError

    from latentatlas.errors import LatentAtlasError

    for model in (LatentFactorModel(), EASE()):
        with pytest.raises(NotFittedError) as err:
            model.recommend(1)
        assert isinstance(err.value, LatentAtlasError)


def test_notebooks_still_show_scikit_learns_diagram():
    html = LatentFactorModel(k=7, solver="sgd")._repr_html_()
    assert html is not None and "LatentFactorModel" in html and "k=7" in html and "solver=&#x27;sgd&#x27;" in html
