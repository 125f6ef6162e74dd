"""Regressions found by fuzzing the readers of recipes, options files, lists and audio: each test
is the smallest input that showed the fault."""

import pytest

from emkit.recipe import RecipeError, load_recipe

RECIPE = """\
[features]
{line}

[data.train]
audio = "audio"

[ubm]
[systems]
[conditions]
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "audio").mkdir()
    return tmp_path


@pytest.mark.parametrize("line, expected", [
    ("delta_order = 2147483648", r"features.delta_order: must be at most 500 with delta_window 2"),
    ("delta_window = 2147483648", r"features.delta_window: must be at most 1000 \(frames"),
    ("delta_order = 1001\ndelta_window = 1", r"delta_order: must be at most 1000 with delta_win"),
])
def test_a_huge_delta_order_or_window_in_a_recipe_is_refused_not_a_hang(project, no_hang, line,
                                                                       expected):
    # delta_order = 2147483648 convolved the regression window 2**31 times (hours, and memory
    # growing with the square of the order); a window of 2**31 allocated 32 GiB of taps
    (project / "recipe.toml").write_text(RECIPE.format(line=line))
    with pytest.raises(RecipeError, match=expected):
        load_recipe(project / "recipe.toml")


def test_a_number_of_thousands_of_digits_in_a_recipe_is_a_recipe_error(project):
    # tomllib's int() met Python's 4300-digit limit: a bare ValueError ("Exceeds the limit (4300
    # digits) for integer string conversion...") naming neither the recipe nor the problem
    (project / "recipe.toml").write_text(RECIPE.format(line="num_ceps = " + "1" * 4400))
    with pytest.raises(RecipeError, match=r"recipe.toml: not a usable TOML file \(a number too "
                                          r"long to read\)"):
        load_recipe(project / "recipe.toml")
