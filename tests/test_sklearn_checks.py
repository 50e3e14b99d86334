"""scikit-learn's own estimator checks on LatentFactorModel.

``X`` is (user id, item id) pairs by design, so the checks that feed it wide random float matrices, or
random floats as ids, cannot pass; each is named below with the reason. Every other check must pass.
"""

import warnings

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from latentatlas import LatentFactorModel

PAIRS = "X is (user id, item id) pairs by design: the check passes a wider matrix"
FLOAT_IDS = "random floats are refused as ids (1.5 is no id): the check passes them as X"

EXPECTED = {name: PAIRS for name in (
    "check_fit_score_takes_y", "check_dont_overwrite_parameters", "check_n_features_in_after_fitting",
    "check_estimators_dtypes", "check_dtype_object", "check_pipeline_consistency", "check_estimators_pickle",
    "check_f_contiguous_array_estimator", "check_regressors_train", "check_regressor_data_not_an_array",
    "check_regressors_no_decision_function", "check_supervised_y_2d", "check_regressors_int",
    "check_methods_sample_order_invariance", "check_methods_subset_invariance", "check_fit2d_1sample",
    "check_fit2d_1feature", "check_dict_unchanged", "check_fit2d_predict1d", "check_estimators_nan_inf",
    "check_positive_only_tag_during_fit")}
EXPECTED.update({name: FLOAT_IDS for name in (
    "check_estimators_overwrite_params", "check_estimators_fit_returns_self", "check_readonly_memmap_input",
    "check_fit_idempotent", "check_fit_check_is_fitted", "check_n_features_in")})


# The models implement scikit-learn's protocol without inheriting BaseEstimator (see ratings/base.py), which
# the checks note with a warning when they are collected; every check below still runs against them.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Estimator LatentFactorModel does not inherit")
    _checks = parametrize_with_checks([LatentFactorModel(k=2, max_steps=3)],
                                      expected_failed_checks=lambda est: EXPECTED)


@_checks
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)


def test_the_real_fixes_hold():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        LatentFactorModel().predict([[1, 2]])
    with pytest.raises(ValueError, match="Complex data not supported"):
        LatentFactorModel().fit([[1 + 2j, 3]], [4.0])
    with pytest.raises(ValueError, match="requires y to be passed"):
        LatentFactorModel().fit([[1, 2]])
    model = LatentFactorModel(k=2, max_steps=2).fit([[u, i] for u in range(6) for i in range(5)],
                                                   [float((u + i) % 5 + 1) for u in range(6) for i in range(5)])
    assert model.n_features_in_ == 2
    assert model.k_ == 2 and model.reg_ == model.reg_value  # the values the fit used, as fitted attributes
    default = LatentFactorModel(max_steps=2).fit([[u, i] for u in range(6) for i in range(5)],
                                                 [float((u + i) % 5 + 1) for u in range(6) for i in range(5)])
    assert default.k is None and default.k_ == 4  # the default 64 capped below min(6 users, 5 items)
