"""Measures as printed text: fixed decimals for ordinary values, scientific notation otherwise."""

import math

import pytest

from emkit.evaluation.text import aligned, format_measure
from emkit.recipe._report import results_table


@pytest.mark.parametrize("value, decimals, text", [
    (0.8849, 3, "0.885"), (17.1428, 2, "17.14"), (0.0, 4, "0.0000"), (1.0, 4, "1.0000"),
    (999999.0, 3, "999999.000"), (-2.5, 3, "-2.500"), (0.0001, 4, "0.0001"),
    (7.213475e299, 3, "7.21e+299"), (1e6, 2, "1.00e+06"),     # huge: before, 300 digits
    (4e-5, 4, "4.00e-05"), (-3e-9, 3, "-3.00e-09"),            # tiny: before, 0.0000
    (math.inf, 3, "inf"), (math.nan, 3, "nan"),
])
def test_format_measure(value, decimals, text):
    assert format_measure(value, decimals) == text


def test_aligned_widens_a_column_for_its_widest_cell_only():
    lines = aligned([["name", "Cllr", "min"], ["a", "7.21e+299", "1.0"], ["bb", "0.5"]],
                    [3, 5, 4])
    assert lines == ["name      Cllr  min", "a    7.21e+299  1.0", "bb         0.5"]


def test_report_of_a_huge_cllr_uses_scientific_notation():
    row = {"system": "s", "condition": "c", "scores": "x.txt", "targets": 2, "nontargets": 3,
           "eer_raw": 0.5, "eer": 0.25, "min_dcf": {"0.01": 1.0}, "act_dcf": {"0.01": 50.5},
           "cllr": 1e300, "min_cllr": 1.0}
    last = results_table([row], [0.01]).splitlines()[-1]
    assert last == ("| s | c | x.txt | 2 | 3 | 50.00 | 25.00 | 1.0000 | 50.5000 | 1.00e+300 "
                    "| 1.0000 |")
