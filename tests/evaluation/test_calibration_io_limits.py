"""Calibration files beyond the JSON parser's limits: the module's file error naming the file."""

import pytest

from emkit.calibration_io import load_calibration

HEAD = '{"format": "emkit.LinearCalibration", "version": 1, "prior": 0.5, "intercept": 0, "coef": '


@pytest.mark.parametrize("coef", ["[" * 100_000 + "]" * 100_000, "[" + "9" * 5000 + "]"],
                         ids=["deep-nesting", "5000-digit-integer"])
def test_json_beyond_the_parser_limits_names_the_file(tmp_path, coef):
    path = tmp_path / "cal.json"
    path.write_text(HEAD + coef + "}")
    with pytest.raises(ValueError, match="not a calibration file") as info:
        load_calibration(path)
    assert type(info.value) is ValueError  # not a RecursionError
    assert str(path) in str(info.value) and len(str(info.value)) < 200 + len(str(path))
    assert "9999" not in str(info.value)


@pytest.mark.parametrize("version, message", [
    ("3", "calibration format version 3 is newer than this emkit reads \\(<= 2\\); upgrade emkit"),
    ("0", "calibration format version 0 is not one emkit writes \\(expected 1 to 2\\)"),
    ('"' + "x" * 100 + '"', "calibration format version not a version number is not one emkit"),
    ("true", "calibration format version True is not one emkit writes"),
    ("1.0", "calibration format version 1.0 is not one emkit writes"),
])
def test_a_calibration_of_another_version_says_which(tmp_path, version, message):
    """(it said 'unsupported calibration format version (expected 1)' whatever it found)"""
    path = tmp_path / "cal.json"
    path.write_text('{"format": "emkit.LinearCalibration", "version": %s, "prior": 0.5, '
                    '"coef": [1.0], "intercept": 0.0}' % version)
    with pytest.raises(ValueError, match=message):
        load_calibration(path)
