"""scikit-learn's API checks on a tiny configuration of the synthesizer.

No check is expected to fail: arrays are accepted (columns ``col_0 ..``), ``y`` becomes a column of the learned
table, one-row data trains (without validation rows) and NaN means NULL.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from synthgen import TabularSynthesizer

EXPECTED_FAILURES: dict[str, str] = {}


@parametrize_with_checks([TabularSynthesizer(model="small", max_epochs=1, random_state=0)], legacy=False,
                         expected_failed_checks=lambda estimator: EXPECTED_FAILURES)
def test_sklearn_api(estimator, check):
    check(estimator)
