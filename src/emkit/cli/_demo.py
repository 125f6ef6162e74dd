"""``emkit demo``: the whole experiment on the embedded Japanese Vowels data."""

from __future__ import annotations

import click

from ._app import EXIT_FAILURE, cli, progress_option


@cli.command("demo")
@click.option("-o", "--output", type=click.Path(file_okay=False), default="emkit-demo",
              show_default=True,
              help="Folder for the models (HDF5), the scores (text), the DET plot (det.png) "
                   "and results.txt; created if needed, files in it are replaced.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of every random initialisation (k-means, U, V, T): the same seed gives "
                   "the same numbers.")
@click.option("-n", "--gaussians", type=click.IntRange(min=2), default=None,
              help="Gaussians of the UBM (default 4, chosen by cross-validation on the training "
                   "session: scripts/select_demo_hyperparameters.py).")
@progress_option
def demo(output, seed, gaussians, progress):
    """Run a complete speaker-verification experiment on embedded data.

    UCI Japanese Vowels (9 speakers, 12 LPC cepstra, two sessions): a UBM (k-means, then ML),
    then GMM-MAP with linear scoring, ISV, JFA, i-vectors with whitening, length normalisation,
    WCCN and cosine scoring, and i-vectors with PLDA (systems whose module is missing are skipped
    with a note).  Models are trained and enrolled on session 0 and probed with session 1; the
    protocol is printed first.  Prints EER and minDCF (P_target 0.01 and 0.001, C_miss = C_fa = 1)
    per system.
    """
    from ..experiment import DemoConfig, run_demo

    config = DemoConfig() if gaussians is None else DemoConfig(n_gaussians=gaussians)
    result = run_demo(output, seed=seed, config=config, progress=progress, echo=click.echo)
    if result.failed:
        click.echo(f"emkit demo: error: {len(result.failed)} system(s) failed: "
                   f"{', '.join(result.failed)} (see above)", err=True)
        return EXIT_FAILURE
    click.echo(f"\nFinished in {result.seconds:.1f} s; {len(result.files)} files written to "
               f"{output}/ (det.png, results.txt, scores/, *.h5)")
