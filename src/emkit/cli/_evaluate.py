"""``emkit evaluate``: EER, minDCF, actDCF, Cllr and min Cllr of score files; a DET plot."""

from __future__ import annotations

import os

import click

from ._app import InputFile, check_outputs, cli, lazy_module
from ._commands import OUTPUT
from ._numbers import POSITIVE, FiniteFloatRange

ex = lazy_module("emkit.experiment")
fe = lazy_module("emkit.io.lists")


def row_names(paths) -> list:
    """For each path, its shortest trailing part (extension dropped) that no other path shares.

    ``["a/x.txt", "b/x.txt", "y.txt"]`` -> ``["a/x", "b/x", "y"]``.  Paths that differ only by
    their extension keep it; the same file given twice is a usage error.
    """
    full = [os.path.normpath(os.path.abspath(p)) for p in paths]
    if len(set(full)) < len(full):
        again = next(p for i, p in enumerate(paths) if full[i] in full[:i])
        raise click.UsageError(f"the score file {again!r} is given twice")
    parts = [f.split(os.sep) for f in full]
    stems = [p[:-1] + [os.path.splitext(p[-1])[0]] for p in parts]
    out = []
    for i, own in enumerate(stems):
        for k in range(1, len(own) + 1):
            name = own[-k:]
            if all(other[-k:] != name for j, other in enumerate(stems) if j != i):
                out.append("/".join(name))
                break
        else:  # only the extension tells it apart
            out.append(next("/".join(parts[i][-k:]) for k in range(1, len(parts[i]) + 1)
                            if all(o[-k:] != parts[i][-k:] for j, o in enumerate(parts) if j != i)))
    return out


@cli.command("evaluate")
@click.argument("scores", nargs=-1, required=True, type=InputFile())
@click.option("--key", type=InputFile(), default=None,
              help="Trial list with labels ('model-id probe-id target|nontarget'), for score "
                   "files without a label column.")
@click.option("--p-target", "p_targets", multiple=True, default=(0.01, 0.001), show_default=True,
              type=FiniteFloatRange(0, 1, min_open=True, max_open=True),
              help="Prior of a target trial for minDCF and actDCF; repeat for several.")
@click.option("--c-miss", type=POSITIVE, default=1.0, show_default=True,
              help="Cost of a miss.")
@click.option("--c-fa", type=POSITIVE, default=1.0, show_default=True,
              help="Cost of a false alarm.")
@click.option("--det", type=OUTPUT, default=None,
              help="Also write a DET plot (probit axes, one ROCCH DET curve per score file, "
                   "legend below the plot), in the format of the file's extension: .png, .pdf, "
                   ".svg, .eps or .ps.")
@click.option("--calibration", type=InputFile(), default=None,
              help="A calibration saved by 'emkit calibrate --save' (JSON): actDCF and Cllr are "
                   "those of the scores it calibrates (EER, minDCF and min Cllr do not change).")
@click.option("--by-model", is_flag=True,
              help="Also print, for each score file, one row per model: its target and "
                   "non-target trials, EER and minDCF (a model with only one class of trials is "
                   "reported as such).")
def evaluate(scores, key, p_targets, c_miss, c_fa, det, calibration, by_model):
    """Print EER, minDCF, actDCF, Cllr and min Cllr of each SCORES file.

    actDCF and Cllr read the scores as calibrated natural-log likelihood ratios; EER, minDCF and
    min Cllr do not depend on calibration.  The EER is the ROCCH-EER (BOSARIS convention): where
    the convex hull of the (false alarm, miss) operating points crosses the diagonal.  The DET
    plot draws that hull (the ROCCH DET curve, as BOSARIS does), so each curve crosses the
    diagonal at its EER; the raw step curve lies on or above it.  Each model-probe pair may
    appear once per file (a repeat is an error naming both lines).

    One row per file, named after the file without its extension; when two files share a name,
    by the shortest trailing part of their paths that tells them apart (a/scores, b/scores).

    With --calibration CAL.json, actDCF and Cllr are those of the calibrated scores, beside the
    calibration-free minDCF and min Cllr: their difference is the calibration loss.
    """
    from ..evaluation import calibration_io as cio
    from ..evaluation import metrics
    from ..evaluation.text import aligned, format_measure

    check_outputs({"--det": det}, {"SCORES": list(scores), "--key": key,
                                   "--calibration": calibration})
    if det and os.path.splitext(det)[1].lower() not in ex.FIGURE_FORMATS:
        raise click.BadParameter(f"{det!r}: the extension gives the format of the plot, one of "
                                 f"{', '.join(ex.FIGURE_FORMATS)}", param_hint="'--det'")
    cal = cio.load_calibration(calibration) if calibration else None
    names = row_names(scores)
    systems, per_model, key_read = {}, {}, None
    for path, name in zip(scores, names, strict=True):
        trials, values = fe.read_scores(path)
        labels = trials.labels
        if labels is None and key:
            if key_read is None:  # (read once, when a file first needs it)
                key_read = fe.read_key(key)
            labels = fe.labels_from_key(path, trials, key_read)
        if labels is None:
            raise fe.FeatureError(f"{path}: the scores have no label column; give --key TRIALS")
        if labels.all() or not labels.any():
            raise fe.FeatureError(f"{path}: evaluation needs target and non-target trials; got "
                                  f"only {'target' if labels.all() else 'non-target'} ones")
        systems[name] = (values[labels], values[~labels])
        if by_model:
            per_model[name] = (trials.models, values, labels)
    if key and key_read is None:
        raise click.UsageError(f"--key does not apply: every score file has its own label "
                               f"column, so {key} would not be read")
    table = [["scores", "targets", "non-tgt", "EER (%)"]]
    for p in p_targets:
        table[0] += [f"minDCF({p:g})", f"actDCF({p:g})"]
    table[0] += ["Cllr", "minCllr"]
    for name, (tar, non) in systems.items():
        m = cio.score_metrics(tar, non, p_targets, c_miss, c_fa, calibration=cal)
        row = [name, str(tar.size), str(non.size), format_measure(100 * m["eer"], 2)]
        for p in p_targets:
            row += [format_measure(m[k][float(p)], 4) for k in ("min_dcf", "act_dcf")]
        table.append(row + [format_measure(m[k], 3) for k in ("cllr", "min_cllr")])
    lines = aligned(table, [12, 8, 8, 8] + [14, 14] * len(p_targets) + [7, 7])
    if cal is not None:
        lines.append(f"actDCF and Cllr: of the scores calibrated by {calibration} "
                     f"({cio.formula(cal)})")
    if by_model:
        for name, (models, values, labels) in per_model.items():
            lines += ["", *model_table(name, models, values, labels, p_targets, c_miss, c_fa)]
    if det:
        ex.save_figure(metrics.plot_det_curves(systems), det)
    click.echo("\n".join(lines))
    if det:
        click.echo(f"DET plot -> {det}")


def model_table(name, models, values, labels, p_targets, c_miss, c_fa) -> list:
    """The lines of the per-model table of one score file (models in order of appearance)."""
    from ..evaluation import metrics
    from ..evaluation.text import aligned, format_measure

    rows = metrics.per_model(models, values, labels, p_targets, c_miss, c_fa)
    table = [["model", "targets", "non-tgt", "EER (%)"] + [f"minDCF({p:g})" for p in p_targets]]
    notes = {}
    for r in rows:
        row = [r["model"], str(r["targets"]), str(r["nontargets"])]
        if r["eer"] is None:
            notes[len(table)] = (f"  only {'non-target' if r['targets'] == 0 else 'target'} "
                                 "trials: no EER or minDCF")
        else:
            row.append(format_measure(100 * r["eer"], 2))
            row += [format_measure(r["min_dcf"][p], 4) for p in p_targets]
        table.append(row)
    lines = aligned(table, [12, 8, 8, 8] + [14] * len(p_targets))
    return [f"per model ({name}):"] + [line + notes.get(i, "") for i, line in enumerate(lines)]
