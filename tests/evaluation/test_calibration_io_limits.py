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
