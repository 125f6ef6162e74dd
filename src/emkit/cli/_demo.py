"""``emkit demo``: the whole experiment on the embedded Japanese Vowels data."""

from __future__ import annotations

import dataclasses

import click

from ._app import cli, progress_option
from ._numbers import INT, FiniteFloatRange, IntRange


@cli.command("demo")
@click.option("-o", "--output", type=click.Path(file_okay=False), default="emkit-demo",
              show_default=True,
              help="Folder for the recipe and its data, the models (HDF5), the scores "
                   "(scores/*.txt), the DET plot (det.png), report.md and results.txt; created "
                   "if needed, files in it are replaced.")
@click.option("--seed", type=INT, default=0, show_default=True,
              help="Seed of every random initialisation (k-means, U, V, T): the same seed gives "
                   "the same numbers.")
@click.option("-n", "--gaussians", type=IntRange(min=2), default=None,
              help="Gaussians of the UBM (default 4, chosen by cross-validation on the training "
                   "session: scripts/select_demo_hyperparameters.py of emkit's source "
                   "repository).")
@click.option("--export", type=click.Path(file_okay=False), default=None,
              help="Only write the recipe (recipe.toml) and its data (data/, lists/) into this "
                   "folder, to run later with 'emkit run DIR/recipe.toml'; nothing is trained. A "
                   "recipe or list edited there since is not replaced (the command refuses).")
@click.option("--gselect", type=IntRange(min=1), default=None, metavar="K",
              help="Gaussian selection in the statistics of every system: only the K best "
                   "Gaussians of each frame get posteriors (Kaldi's gselect; at most --gaussians). "
                   "Default: exact statistics.")
@click.option("--min-posterior", type=FiniteFloatRange(0.0, 1.0, max_open=True), default=0.0,
              show_default=True,
              help="With --gselect: posteriors below this are dropped and the rest renormalised.")
@progress_option
def demo(output, seed, gaussians, export, gselect, min_posterior, progress):
    """Run a complete speaker-verification experiment on embedded data.

    UCI Japanese Vowels (9 speakers, 12 LPC cepstra, two sessions): a UBM (k-means, then ML),
    then GMM-MAP with linear scoring, ISV, JFA, i-vectors with whitening, length normalisation,
    WCCN and cosine scoring, and i-vectors with PLDA (systems whose module is missing are skipped
    with a note).  Models are trained and enrolled on session 0 and probed with session 1; the
    protocol is printed first.  Prints EER and minDCF (P_target 0.01 and 0.001, C_miss = C_fa = 1)
    per system.

    The experiment is a recipe: the embedded data are exported to OUTPUT (data/, lists/) with
    OUTPUT/recipe.toml, which this command runs as 'emkit run' would (every step; the steps go
    to stderr).  Edit the recipe and 'emkit run OUTPUT/recipe.toml' re-runs only what changed;
    'emkit demo --export DIR' writes the recipe and its data without running them.
    """
    from ..demo_recipe import export_demo, run_demo_recipe
    from ..experiment import DemoConfig

    config = DemoConfig() if gaussians is None else DemoConfig(n_gaussians=gaussians)
    if gselect is not None and gselect > config.n_gaussians:
        raise click.BadParameter(f"{gselect} is more than the UBM's {config.n_gaussians} "
                                 "Gaussians (--gaussians)", param_hint="'--gselect'")
    if min_posterior and gselect is None:
        raise click.UsageError("--min-posterior needs --gselect")
    if gselect is not None:
        config = dataclasses.replace(config, gselect=gselect, min_posterior=min_posterior)
    if export is not None:
        if click.get_current_context().get_parameter_source("output").name != "DEFAULT":
            raise click.UsageError("-o/--output does not apply with --export: the recipe's "
                                   "outputs go to its work_dir when it is run")
        files = export_demo(export, config, seed)
        click.echo(f"{len(files)} files written to {export}/; run the demo with: emkit run "
                   f"{export}/recipe.toml")
        return
    result = run_demo_recipe(output, seed=seed, config=config, progress=progress,
                             echo=click.echo, step_echo=lambda text: click.echo(text, err=True))
    click.echo(f"\nFinished in {result.seconds:.1f} s; {len(result.files)} files written to "
               f"{output}/ (recipe.toml, scores/, det.png, results.txt, report.md, *.h5)")
