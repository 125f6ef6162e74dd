"""Step kinds after training: score, norm, calibrate, evaluate (see :mod:`._steps`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .. import experiment as ex
from ..io.atomic import atomic_write
from ..io.lists import read_id_map, read_trials, write_scores
from ._left_out import kept_labels
from ._runner import FunctionStep
from ._scoring import normalise, read_npz, save_npz, score_condition
from ._steps import (_feature_inputs, _labels, machine_path, selection, statistics_settings,
                     step_kind)

__all__ = ["final_scores", "score_paths"]


def score_paths(work, system, cond) -> tuple:
    d = work / "systems" / system
    return d / f"{cond}.npz", d / f"{cond}.raw.txt"


@step_kind("score")
def _score_steps(recipe, work):
    steps, norm = [], recipe["norm"]
    cohort = norm["cohort"] if norm else None
    for system, s in recipe["systems"].items():
        for cond, c in recipe["conditions"].items():
            npz, raw = score_paths(work, system, cond)

            def run(ctx, s=s, c=c, npz=npz, raw=raw, system=system):
                co = None if cohort is None else _cohort(ctx, cohort)
                with statistics_settings(recipe):
                    arrays = score_condition(machine_path(recipe, work, system), s, c,
                                             ctx.features(c["data"]), co)
                save_npz(arrays, npz)
                trials = read_trials(c["trials"])
                write_scores(raw, trials.models, trials.probes,
                             arrays["scores"][arrays["rows"], arrays["cols"]], trials.labels)
                return f"{len(trials)} trials"

            def inputs(s=s, c=c, system=system):
                files = [os.fspath(machine_path(recipe, work, system)),
                         *_feature_inputs(recipe, work, c["data"]), c["enroll"], c["trials"]]
                if cohort:
                    files += _feature_inputs(recipe, work, cohort) + _labels(recipe, cohort)
                return files

            params = {"relevance_factor": s["relevance_factor"], "backend": s.get("backend"),
                      "cohort": cohort, **selection(recipe)}
            steps.append(FunctionStep(f"score:{system}:{cond}", run, inputs, params, [npz, raw]))
    return steps


def _cohort(ctx, name) -> tuple:
    """(name, features, utt2spk) of the cohort set (without the utterances left out)."""
    features = ctx.features(name)
    utt2spk = read_id_map(ctx.recipe["data"][name]["utt2spk"])
    return name, features, kept_labels(ctx.recipe, name, features, utt2spk)


def final_scores(recipe, work, system, cond, stage=None) -> Path:
    """The score file of a system and condition after normalisation and calibration (or after
    ``stage``: "raw", "norm")."""
    d = work / "systems" / system
    stage = stage or ("cal" if recipe["calibration"] else "norm" if recipe["norm"] else "raw")
    return d / f"{cond}.{stage}.txt"


@step_kind("norm")
def _norm_steps(recipe, work):
    n = recipe["norm"]
    if not n:
        return []
    steps = []
    for system in recipe["systems"]:
        for cond, c in recipe["conditions"].items():
            npz, _ = score_paths(work, system, cond)
            out = final_scores(recipe, work, system, cond, "norm")

            def run(ctx, npz=npz, out=out, c=c):
                values = normalise(read_npz(npz), n["method"], top_n=n["top_n"], ddof=n["ddof"])
                trials = read_trials(c["trials"])
                write_scores(out, trials.models, trials.probes, values, trials.labels)
                return f"{n['method']}-norm of {len(values)} trials"

            steps.append(FunctionStep(f"norm:{system}:{cond}", run,
                                      lambda npz=npz, c=c: [os.fspath(npz), c["trials"]],
                                      {k: n[k] for k in ("method", "top_n", "ddof")}, [out]))
    return steps


@step_kind("calibrate")
def _calibrate_steps(recipe, work):
    from ..evaluation import calibration_io as cio

    cal = recipe["calibration"]
    if not cal:
        return []
    stage = "norm" if recipe["norm"] else "raw"
    steps = []
    for system in recipe["systems"]:
        ins = {cond: final_scores(recipe, work, system, cond, stage)
               for cond in recipe["conditions"]}
        outs = {cond: final_scores(recipe, work, system, cond) for cond in recipe["conditions"]}
        model_file = work / "systems" / system / "calibration.json"

        def run(ctx, ins=ins, outs=outs, model_file=model_file):
            model = cio.train_calibration(ins[cal["train"]], prior=cal["prior"])
            cio.save_calibration(model, model_file)
            for cond, path in ins.items():
                cio.calibrate_file(model, path, outs[cond])
            return cio.formula(model, digits=4)

        steps.append(FunctionStep(f"calibrate:{system}", run,
                                  lambda ins=ins: [os.fspath(p) for p in ins.values()], cal,
                                  [model_file, *outs.values()]))
    return steps


@step_kind("evaluate")
def _evaluate_steps(recipe, work):
    from ..evaluation import calibration_io as cio
    from ..evaluation import metrics

    e = recipe["evaluation"]
    files = {(system, cond): final_scores(recipe, work, system, cond)
             for system in recipe["systems"] for cond in recipe["conditions"]}
    raw = {k: final_scores(recipe, work, *k, "raw") for k in files}

    def run(ctx):
        rows, curves = [], {}
        for (system, cond), path in files.items():
            _, values, labels = cio.labelled_scores(path)
            tar, non = values[labels], values[~labels]
            m = cio.score_metrics(tar, non, e["p_target"], e["c_miss"], e["c_fa"])
            m["min_dcf"] = {str(k): v for k, v in m["min_dcf"].items()}
            m["act_dcf"] = {str(k): v for k, v in m["act_dcf"].items()}
            _, values, labels = cio.labelled_scores(raw[system, cond])
            m["eer_raw"] = metrics.eer(values[labels], values[~labels])  # before normalisation
            rows.append({"system": system, "condition": cond, "scores": path.name, **m})
            curves[f"{system} / {cond}"] = (tar, non)
        with atomic_write(work / "results.json") as f:
            json.dump(rows, f, indent=1)
        ex.save_png(metrics.plot_det_curves(curves, title=e["title"]), work / "det.png")
        return f"{len(rows)} score files evaluated"

    return [FunctionStep("evaluate", run,
                         lambda: [os.fspath(p) for p in [*files.values(), *raw.values()]], e,
                         [work / "results.json", work / "det.png"])]
