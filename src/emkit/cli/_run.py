"""``emkit run RECIPE``: a whole experiment from one TOML file (see :mod:`emkit.recipe`)."""

from __future__ import annotations

import click

from ._app import InputFile, progress_option
from ._bool_flags import FlagValueCommand

__all__ = ["run"]


@click.command("run", cls=FlagValueCommand)
@click.argument("recipe", type=InputFile())
@click.option("--force", is_flag=True, help="Run every step, even those up to date.")
@progress_option
def run(recipe, force, progress):
    """Run the recipe file RECIPE (TOML): features, UBM, systems, scoring, score
    normalisation, calibration and evaluation.

    \b
    Every step writes into the recipe's work_dir and is skipped when its inputs
    (by content) and parameters are unchanged since its last successful run, so an
    interrupted or edited recipe re-runs only what changed.  A recipe with an input
    file where a step writes is refused before anything runs.  The report (results
    table, DET plot, timings) goes to <work_dir>/report.md.

    \b
    Sections: [data.NAME], [features], [ubm], [systems.NAME], [conditions.NAME],
    [norm], [calibration], [evaluation]; every key and its default are in
    docs/recipes.md of emkit's source repository (its examples/demo_recipe.toml and
    examples/espeak_recipe/ are complete recipes).  'emkit demo --export DIR'
    writes a complete recipe and its data, from the installed package alone.

    \b
    An utterance whose features cannot be computed stops the run, unless
    [features] keep_going = true leaves it out, as emkit features --keep-going
    does (its speaker label set aside too).
    """
    from ..recipe import run_recipe
    from ..recipe._report import read_results

    results, report = run_recipe(recipe, force=force, progress=progress,
                                 echo=lambda text: click.echo(text, err=True))
    ran = sum(r.status == "run" for r in results)
    click.echo(f"{ran} step(s) run, {len(results) - ran} up to date; report -> {report}")
    click.echo(_table(read_results(report.with_name("results.json"))))


def _table(rows) -> str:
    """One aligned line per system and condition (columns as wide as the longest name)."""
    from ..evaluation.text import format_measure

    width_s = max([12] + [len(r["system"]) for r in rows])
    width_c = max([8] + [len(r["condition"]) for r in rows])
    return "\n".join(f"{r['system']:<{width_s}} {r['condition']:<{width_c}} EER "
                     f"{format_measure(100 * r['eer'], 2):>6}%  Cllr {format_measure(r['cllr'], 3)}"
                     f"  min Cllr {format_measure(r['min_cllr'], 3)}" for r in rows)
