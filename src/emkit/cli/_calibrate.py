"""``emkit calibrate``: train a linear calibration on development scores, save/load it, apply it
to evaluation scores."""

from __future__ import annotations

import click

from ._app import InputFile, check_outputs
from ._bool_flags import FlagValueCommand
from ._numbers import FiniteFloatRange

__all__ = ["calibrate"]


@click.command("calibrate", cls=FlagValueCommand)
@click.argument("scores", required=False, type=InputFile())
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="The calibrated scores of SCORES to write (same trials and labels; scores "
                   "are natural-log likelihood ratios).")
@click.option("--train", "dev", type=InputFile(), default=None,
              help="Development scores to train the calibration on ('model-id probe-id score "
                   "[target|nontarget]' lines).")
@click.option("--key", type=InputFile(), default=None,
              help="Labels of the development trials ('model-id probe-id target|nontarget'), "
                   "when --train has no label column.")
@click.option("--prior", type=FiniteFloatRange(0, 1, min_open=True, max_open=True), default=0.5,
              show_default=True,
              help="Effective target prior the calibration is trained for.")
@click.option("--save", type=click.Path(dir_okay=False), default=None,
              help="Write the trained calibration (JSON).")
@click.option("--load", type=InputFile(), default=None,
              help="Use a calibration saved by --save instead of training one.")
def calibrate(scores, output, dev, key, prior, save, load):
    """Calibrate SCORES to log-likelihood ratios with an affine map ``w * score + b``.

    \b
    Train on labelled development scores (--train, with --key when they have no
    labels), or --load a saved calibration; optionally --save it; apply it to
    SCORES and write the result to -o.  Examples:
      emkit calibrate --train dev.txt --key dev.trials --save cal.json
      emkit calibrate eval.txt --load cal.json -o eval.llr.txt
    """
    from ..evaluation import calibration_io as cio
    from ..evaluation import metrics
    from ..evaluation.text import format_measure

    if (dev is None) == (load is None):
        raise click.UsageError("give exactly one of --train DEV_SCORES and --load CALIBRATION")
    if key is not None and dev is None:
        raise click.UsageError("--key labels the --train scores; it needs --train")
    if (scores is None) != (output is None):
        raise click.UsageError("SCORES and -o/--output go together (the scores to calibrate and "
                               "where to write them)")
    if scores is None and save is None:
        raise click.UsageError("nothing to do: give SCORES -o OUTPUT and/or --save CALIBRATION")
    check_outputs({"-o/--output": output, "--save": save},
                  {"SCORES": scores, "--train": dev, "--key": key, "--load": load})
    from ..io.atomic import same_destination

    if output is not None and save is not None and same_destination(output, save):
        raise click.UsageError("-o/--output and --save must be different files")
    if dev is not None:
        _, values, labels = cio.labelled_scores(dev, key)
        model = cio.fit_calibration(values, labels, dev, prior=prior)  # (the file read once)
        tar, non = values[labels], values[~labels]
        llr = model.transform(values)
        click.echo(f"calibration: {cio.formula(model)} "
                   f"(prior {prior:g}; {tar.size} target and {non.size} non-target trials of "
                   f"{dev}); Cllr {format_measure(metrics.cllr(tar, non), 4)} -> "
                   f"{format_measure(metrics.cllr(llr[labels], llr[~labels]), 4)} (min Cllr "
                   f"{format_measure(metrics.min_cllr(tar, non), 4)})")
        if save is not None:
            cio.save_calibration(model, save, n_targets=tar.size, n_nontargets=non.size)
            click.echo(f"calibration -> {save}")
    else:
        model = cio.load_calibration(load)
        if save is not None:
            cio.save_calibration(model, save)
            click.echo(f"calibration -> {save}")
    if scores is not None:
        n = cio.calibrate_file(model, scores, output)
        click.echo(f"{n} calibrated scores -> {output}")
