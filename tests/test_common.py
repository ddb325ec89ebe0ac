"""One battery for every family in the catalogue (aekit.models.catalog.FAMILIES).

A family added to the catalogue gets every check here from its entry in tests/helpers.py
(FAMILIES), and a family without one fails ``test_every_catalogue_family_has_a_test_configuration``:

* scikit-learn's estimator checks, with the failures expected of each family and their reasons.
"""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from aekit.models import catalog

from .helpers import FAMILIES

CATALOGUE = list(catalog.FAMILIES)


def test_every_catalogue_family_has_a_test_configuration():
    missing = sorted(set(catalog.FAMILIES) - set(FAMILIES))
    assert not missing, f"catalogue families without a test configuration in helpers.py: {missing}"
    assert not set(FAMILIES) - set(catalog.FAMILIES), "configurations of no catalogue family"
    for name, config in FAMILIES.items():
        cls = catalog.cli_class(name)
        assert config.checked, f"{name}: no instance for scikit-learn's checks"
        for est in (*config.checked, *config.variants):
            assert type(est) is cls, f"{name}: {est!r} is not a {cls.__name__}"


# --- scikit-learn's checks -----------------------------------------------------------------------

CHECKED = [est for name in CATALOGUE if name in FAMILIES for est in FAMILIES[name].checked]
EXPECTED = {catalog.cli_class(name): config.expected_failures for name, config in FAMILIES.items()}


@parametrize_with_checks(CHECKED, expected_failed_checks=lambda est: EXPECTED[type(est)])
def test_sklearn_compatible(estimator, check):
    check(estimator)
