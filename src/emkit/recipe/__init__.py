"""One-file recipes: ``emkit run recipe.toml`` from data (audio or features) to evaluated,
normalised and calibrated scores, re-running only the steps whose inputs or parameters changed.

>>> from emkit.recipe import run_recipe
>>> results, report = run_recipe("recipe.toml")                    # doctest: +SKIP

Pieces: :func:`load_recipe` (TOML, validated: :class:`RecipeError` names the file and the
key), :data:`STEP_KINDS` (the registry of step kinds: features, ubm, train, score, norm,
calibrate, evaluate), :class:`Step` (the protocol: ``name``, ``inputs()``, ``params()``,
``outputs()``, ``run(context)``), :class:`Runner` (content-hash stamps, as make).
"""

from __future__ import annotations

from ._report import write_report
from ._runner import FunctionStep, Runner, Step, StepResult, WorkDirBusy
from ._schema import RecipeError, load_recipe, validate
from ._steps import STEP_KINDS, Context, plan, step_kind

__all__ = ["FunctionStep", "RecipeError", "Runner", "STEP_KINDS", "Step", "StepResult",
           "WorkDirBusy", "load_recipe", "plan", "run_recipe", "step_kind", "validate"]


def run_recipe(path, *, force: bool = False, progress: bool = False, echo=None):
    """Run (or skip) every step of the recipe file; write the report.

    Parameters
    ----------
    path : str or path-like
        The recipe (TOML).
    force : bool, default False
        Run every step, even the up-to-date ones.
    progress : bool, default False
        Progress bars on stderr.
    echo : callable, optional
        ``echo(text)`` for each line of progress; None: silent.

    Returns
    -------
    results : list of StepResult
    report : Path
        The ``report.md`` written.

    Raises
    ------
    RecipeError
        An invalid recipe (naming the file and the key).
    WorkDirBusy
        Another run holds the work directory.
    """
    recipe = load_recipe(path)
    steps = plan(recipe)
    runner = Runner(recipe["work_dir"], force=force, echo=echo)
    results = runner.run(steps, Context(recipe, progress=progress))
    report, _ = write_report(recipe, results)
    return results, report
