"""scikit-learn's estimator checks on tiny configurations of the synthesizers.

No check is expected to fail, neither the API checks (``legacy=False``) nor scikit-learn's default set
(``check_estimator``'s defaults): arrays are accepted (columns ``col_0 ..``), ``y`` becomes a column of the
learned table, one-row data trains (without validation rows) and NaN means NULL; sparse, complex, 1-D and
empty input is rejected with scikit-learn's messages.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from synthgen import LanguageSynthesizer, TabularSynthesizer

EXPECTED_FAILURES: dict[str, str] = {}

ESTIMATORS = [TabularSynthesizer(model="small", max_epochs=1, random_state=0),
              LanguageSynthesizer(max_epochs=1, random_state=0)]


@parametrize_with_checks(ESTIMATORS, legacy=False, expected_failed_checks=lambda estimator: EXPECTED_FAILURES)
def test_sklearn_api(estimator, check):
    check(estimator)


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda estimator: EXPECTED_FAILURES)
def test_sklearn_default_checks(estimator, check):
    check(estimator)
