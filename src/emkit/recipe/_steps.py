"""The registry of step kinds: each builds the steps of a validated recipe, in order.

Work-directory layout::

    features/<set>.ark, .scp           features of the audio data sets
    features/<set>.utt2num_frames      their frame counts (Kaldi's utt2num_frames, as emkit
                                       features writes it)
    ubm.h5                             the UBM
    systems/<system>/machine.h5        ISV/JFA machine or i-vector system (not for gmm-map)
    systems/<system>/<cond>.npz        score matrices (and cohort matrices with [norm])
    systems/<system>/<cond>.raw.txt    trial scores; .norm.txt normalised; .cal.txt calibrated
    systems/<system>/calibration.json
    results.json, det.png              evaluation of the final scores
    .checkpoints/<step>*.h5            the training steps' checkpoints while they run (see
                                       :func:`train_resumably`); removed when the step ends

The steps after training (score, norm, calibrate, evaluate) are in :mod:`._steps_scores`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import warnings
from pathlib import Path

import numpy as np

from .. import experiment as ex
from .._caller_warnings import warn_at_caller
from .._progress import utterances_written
from ..io.features import read_feature_sources, script_file_targets
from ..io.lists import count_unlabelled, read_id_map
from ._left_out import kept_labels
from ._runner import FunctionStep

__all__ = ["STEP_KINDS", "step_kind", "plan", "Context", "machine_path", "selection",
           "statistics_settings"]

logger = logging.getLogger("emkit")

#: keys of [ubm] that decide the statistics computed from the UBM, not the UBM itself
SELECTION_KEYS = ("gselect", "min_posterior")

STEP_KINDS = {}


def step_kind(name):
    """Decorator registering a step-kind builder in :data:`STEP_KINDS`.

    Parameters
    ----------
    name : str
        The step kind's name (its place in the registry is its place in the plan).

    Returns
    -------
    callable
        The decorator: it registers ``f(recipe, work: Path) -> list of steps`` and returns it.
    """
    def register(builder):
        STEP_KINDS[name] = builder
        return builder
    return register


def plan(recipe) -> list:
    """Every step of the recipe, in the order of the registry (a valid execution order).

    Parameters
    ----------
    recipe : dict
        A checked recipe (:func:`load_recipe`).

    Returns
    -------
    list of Step

    Raises
    ------
    RecipeError
        A step would write over one of the recipe's inputs.
    """
    work = Path(recipe["work_dir"])
    steps = [step for builder in STEP_KINDS.values() for step in builder(recipe, work)]
    _check_inputs_kept(recipe, work, steps)
    return steps


def _recipe_inputs(recipe, work):
    """(recipe key, path) of every file the recipe reads."""
    yield "the recipe file", recipe["recipe"]
    for name, d in recipe["data"].items():
        if d["audio"] is not None:
            yield from ((f"data.{name}.audio", p) for p in _audio_inputs(recipe, name))
        else:
            yield from ((f"data.{name}.features", p) for p in _feature_inputs(recipe, work, name))
        if d["utt2spk"] is not None:
            yield f"data.{name}.utt2spk", d["utt2spk"]
    for name, c in recipe["conditions"].items():
        yield f"conditions.{name}.enroll", c["enroll"]
        yield f"conditions.{name}.trials", c["trials"]


def _check_inputs_kept(recipe, work, steps) -> None:
    """Refuse a recipe whose steps (or report) would replace one of its input files."""
    from ..io.atomic import overwritten_input
    from ._schema import RecipeError

    outputs = [(step.name, p) for step in steps for p in step.outputs()]
    hit = overwritten_input(outputs + [("report", work / "report.md")], _recipe_inputs(recipe, work))
    if hit is not None:
        step, out, key, path = hit
        raise RecipeError(f"{recipe['recipe']}: {key}: {os.fspath(path)!r} is where step "
                          f"{step!r} writes (work_dir {recipe['work_dir']!r} + "
                          f"{os.path.relpath(out, work)!r}): refusing to overwrite an input; "
                          "move the file out of work_dir or choose another work_dir")


class Context:
    """What the steps share in one run: the recipe and the features read so far."""

    def __init__(self, recipe, *, progress: bool = False):
        self.recipe, self.progress = recipe, progress
        self.work = Path(recipe["work_dir"])
        self._features = {}

    def feature_files(self, name) -> list:
        d = self.recipe["data"][name]
        if d["audio"] is not None:
            return [os.fspath(self.work / "features" / f"{name}.scp")]
        return list(d["features"])

    def features(self, name) -> dict:
        if name not in self._features:
            self._features[name] = read_feature_sources(self.feature_files(name))
        return self._features[name]

    def forget(self, name):
        self._features.pop(name, None)


def _feature_inputs(recipe, work, name) -> list:
    """The feature files of a set, with the archives its .scp files point to."""
    d = recipe["data"][name]
    files = ([work / "features" / f"{name}.scp", work / "features" / f"{name}.ark"]
             if d["audio"] is not None else list(d["features"]))
    out = []
    for f in map(os.fspath, files):
        out.append(f)
        if d["audio"] is None:  # the archives of a script file, found as its reader finds them
            out += [target for target in script_file_targets(f) if target not in out]
    return out


@contextlib.contextmanager
def _naming_audio_key(recipe, name):
    """Errors about the audio of data set ``name`` name the recipe and its key too: the file
    alone does not say which data set, in which recipe, it was read for."""
    from ..io.untrusted import FeatureError

    try:
        yield
    except (FeatureError, FileNotFoundError) as exc:  # (AudioError is a FeatureError)
        raise type(exc)(f"{recipe['recipe']}: data.{name}.audio: {exc}") from None


def _audio_inputs(recipe, name) -> list:
    """The files the features of audio data set ``name`` are computed from (with keep_going,
    those of wav.scp that exist: one that appears later is a new input, which reruns the step)."""
    from ..audio import find_utterances

    directory = recipe["data"][name]["audio"]
    files = [os.fspath(p) for p in sorted(Path(directory).glob("*"))
             if p.name in ("wav.scp", "segments")]
    keep_going = recipe["keep_going"]
    with _naming_audio_key(recipe, name):
        audio = [u.path for u in find_utterances([directory], missing_ok=keep_going)]
    return files + [p for p in audio if not keep_going or os.path.isfile(p)]


def _labels(recipe, name) -> list:
    path = recipe["data"][name]["utt2spk"]
    return [path] if path else []


@step_kind("features")
def _features_steps(recipe, work):
    from .. import audio

    steps = []
    for name, d in recipe["data"].items():
        if d["audio"] is None:
            continue
        ark = work / "features" / f"{name}.ark"
        num_frames = audio.utt2num_frames_path(ark)

        def run(ctx, name=name, d=d, ark=ark, num_frames=num_frames):
            ctx.forget(name)
            with _naming_audio_key(recipe, name):
                shapes = audio.compute_features([d["audio"]], ark, recipe["features"],
                                                jobs=recipe["jobs"], progress=ctx.progress,
                                                seconds_per_process=audio.SECONDS_PER_PROCESS,
                                                utt2num_frames=num_frames,
                                                keep_going=recipe["keep_going"])
            frames = sum(s[0] for s in shapes.values())
            written = _utterances_written(d["audio"], len(shapes), recipe["keep_going"])
            return (f"{written}, {frames} "
                    f"frame{'s' * (frames != 1)} x {next(iter(shapes.values()))[1]}")

        params = {"features": _stamped(recipe["features"])}
        if recipe["keep_going"]:  # (a key only when set: the stamps of earlier runs stay valid)
            params["keep_going"] = True
        if recipe["features"].kaldi.dither:  # (features dithered at random before: recomputed)
            params["dither_noise"] = "seeded by the utterance id"
        inputs = functools.partial(_audio_inputs, recipe, name)
        steps.append(FunctionStep(f"features:{name}", run, inputs,
                                  params, [ark, ark.with_suffix(".scp"), num_frames]))
    return steps


def _utterances_written(data_dir, written: int, keep_going: bool) -> str:
    """How many utterances of ``data_dir`` were written, and of how many when keep_going left
    some out (only then is the data directory read again: without it, all were written)."""
    if not keep_going:
        return utterances_written(written, written)
    from ..audio import find_utterances

    return utterances_written(written, len(find_utterances([data_dir], missing_ok=True)))


def _stamped(config) -> dict:
    """A feature configuration as step parameters: no channel (None) reads the first one of a
    multi-channel file, the same features as channel 0 (the stamps of recipes written when 0
    was the default stay valid); a dither seed only with a dither and when not 0 (the seed 0
    draws the noise drawn before the seed was a key, and without a dither there is none)."""
    params = dataclasses.asdict(config)
    if params["channel"] is None:
        params["channel"] = 0
    if not (config.kaldi.dither and config.dither_seed):
        del params["dither_seed"]
    return params


@step_kind("ubm")
def _ubm_steps(recipe, work):
    u = recipe["ubm"]

    def run(ctx):
        from ._schema import RecipeError

        feats = ctx.features(u["data"])
        # in the order of the ids, not of the lines: k-means samples frames by index, so the
        # same utterances listed in another order would train another UBM
        frames = np.concatenate([feats[utterance] for utterance in sorted(feats)])
        problem = ex.too_few_frames(frames.shape[0], u["gaussians"], "ubm.gaussians =")
        if problem:
            raise RecipeError(f"{recipe['recipe']}: ubm.gaussians: {problem} (data set "
                              f"{u['data']!r})")
        checkpoints = _checkpoints(work, "ubm", "ubm.kmeans")
        with convergence_advice("ubm.iterations"):
            ubm = train_resumably(lambda gmm, kmeans: ex.train_ubm(
                frames, u["gaussians"], max_iterations=u["iterations"],
                convergence_threshold=u["threshold"] or None,  # 0: no test
                kmeans_iterations=u["kmeans_iterations"], seed=recipe["seed"],
                compute_dtype=u["compute_dtype"], checkpoint=gmm, kmeans_checkpoint=kmeans),
                checkpoints)
        ubm.save(work / "ubm.h5")
        _remove(checkpoints)
        return f"{u['gaussians']} Gaussians from {frames.shape[0]} frames, {ubm.n_iter_} EM " \
               "iterations"

    # (compute_dtype and threshold only when not their defaults: the stamps of recipes written
    # before they existed stay valid)
    params = {k: v for k, v in u.items() if k not in SELECTION_KEYS
              and not (k == "compute_dtype" and v == "float64") and not (k == "threshold" and v == 1e-5)}
    return [FunctionStep("ubm", run, lambda: _feature_inputs(recipe, work, u["data"]),
                         {**params, "seed": recipe["seed"]}, [work / "ubm.h5"])]


def _checkpoints(work, *names) -> list:
    return [work / ".checkpoints" / f"{name}.h5" for name in names]


def train_resumably(train, checkpoints: list):
    """``train(*checkpoints)``: the training of a step with the estimators' ``checkpoint=`` files,
    so that a step stopped by Ctrl-C, a scheduler's SIGTERM or a crash resumes at its last
    completed iteration when the recipe runs again.  Checkpoints left by a run on other data or
    with other settings (a recipe edited since) are removed and training starts afresh.  The
    caller removes them (:func:`_remove`) once the step's outputs are written."""
    from .._checkpoint import CheckpointMismatchError

    def attempt():
        checkpoints[0].parent.mkdir(exist_ok=True)
        return train(*checkpoints)

    try:
        return attempt()
    except CheckpointMismatchError as exc:
        logger.info("checkpoint %s is of an earlier run with other data or settings: starting "
                    "afresh", exc.path)
        _remove(checkpoints)
        return attempt()


def _remove(checkpoints) -> None:
    for path in checkpoints:
        path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # (not empty: another step's, interrupted)
        checkpoints[0].parent.rmdir()


@contextlib.contextmanager
def convergence_advice(key: str):
    """Convergence warnings of the training inside, advising the recipe's key (``key``; the
    UBM's k-means start: ``ubm.kmeans_iterations``) rather than the estimators' parameters."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        yield
    for w in caught:
        message = str(w.message)
        if issubclass(w.category, ConvergenceWarning) and "did not converge" in message:
            wanted = "ubm.kmeans_iterations" if message.startswith("k-means") else key
            message = f"{message.split('; ', 1)[0]}; raise {wanted} in the recipe"
        warnings.warn_explicit(message, w.category, w.filename, w.lineno)


def selection(recipe) -> dict:
    """The [ubm] Gaussian selection as step parameters: empty when the statistics are exact (so
    that the stamps of recipes without it stay valid)."""
    u = recipe["ubm"]
    if u.get("gselect") is None:
        return {}
    return {"gselect": u["gselect"], "min_posterior": u["min_posterior"]}


def statistics_settings(recipe):
    """A context in which the statistics computed from the UBM use the recipe's selection."""
    from .._config import config_context

    sel = selection(recipe)
    return config_context(gselect_top_k=sel.get("gselect"),
                          gselect_min_posterior=sel.get("min_posterior", 0.0))


def machine_path(recipe, work, system) -> Path:
    if recipe["systems"][system]["kind"] == "gmm-map":
        return work / "ubm.h5"
    return work / "systems" / system / "machine.h5"


def _train(ctx, system, s, output):
    checkpoints = _checkpoints(ctx.work, f"train.{system}")
    summary = _train_system(ctx, system, s, output, checkpoints[0])
    _remove(checkpoints)
    return summary


def _train_system(ctx, system, s, output, checkpoint):
    from .. import factor_analysis
    from ..ivector import IVectorMachine

    ubm = ex.load_machine(ctx.work / "ubm.h5")
    feats = ctx.features(s["data"])
    labels = ctx.recipe["data"][s["data"]]["utt2spk"]
    utt2spk = read_id_map(labels) if labels else None  # None: i-vector + cosine without WCCN
    if utt2spk is not None:
        utt2spk = kept_labels(ctx.recipe, s["data"], feats, utt2spk)
    unlabelled = 0 if utt2spk is None else count_unlabelled(feats, utt2spk, labels)
    if unlabelled:
        warn_at_caller(f"{unlabelled} utterance(s) of data set "
                      f"{s['data']!r} have no speaker in {labels} and are not used to train "
                      f"system {system!r}", UserWarning)
    ids = sorted(u for u in feats if utt2spk is None or u in utt2spk)  # (id order: see the UBM's)
    y = None if utt2spk is None else [utt2spk[u] for u in ids]
    if s["kind"] == "ivector":
        _check_ivector_counts(ctx.recipe, system, s, len(ids), y)
    with statistics_settings(ctx.recipe):
        stats = ex.compute_stats(ubm, [feats[u] for u in ids], progress=ctx.progress)
    seed = ctx.recipe["seed"]
    advice = convergence_advice(f"systems.{system}.iterations")
    if s["kind"] == "ivector":
        with advice:
            machine = train_resumably(lambda path: IVectorMachine(
                ubm, dim_t=s["dim"], max_iterations=s["iterations"], random_state=seed,
                checkpoint=path).fit(stats).set_params(checkpoint=None), [checkpoint])
        machine = ex.IVectorBackend.with_dims(machine, lda_dim=s.get("lda_dim"),
                                              plda_dim=s.get("plda_dim")).fit(
            stats, y, plda=s["backend"] == "plda")
    else:
        cls = factor_analysis.ISVMachine if s["kind"] == "isv" else factor_analysis.JFAMachine
        extra = {"r_V": s["rank_v"]} if s["kind"] == "jfa" else {}
        with advice:
            machine = train_resumably(lambda path: cls(
                ubm=ubm, r_U=s["rank_u"], em_iterations=s["iterations"],
                relevance_factor=s["relevance_factor"], random_state=seed, checkpoint=path,
                **extra).fit(stats, y).set_params(checkpoint=None), [checkpoint])
    machine.save(output)
    if y is None:
        return f"i-vector extractor from {len(ids)} utterances (no speaker labels)"
    return f"{s['kind']} from {len(ids)} utterances of {len(set(y))} speakers"


def _check_ivector_counts(recipe, system, s, n_utterances, labels) -> None:
    """An i-vector system's dim against its training utterances, before T is trained (see
    :meth:`emkit.experiment.IVectorBackend.min_utterances`)."""
    from ._schema import RecipeError

    steps = ["LDA"] * ("lda_dim" in s) + ["WCCN"] + ["PLDA"] * (s["backend"] == "plda")
    problem = ex.IVectorBackend.too_few_utterances(
        s["dim"], n_utterances, None if labels is None else len(set(labels)), steps=steps,
        name="dim")
    if problem:
        raise RecipeError(f"{recipe['recipe']}: systems.{system}.dim: {s['dim']}: {problem}; "
                          f"data set {s['data']!r} has {n_utterances}: set a smaller dim or use "
                          "more utterances")


@step_kind("train")
def _train_steps(recipe, work):
    steps = []
    for system, s in recipe["systems"].items():
        if s["kind"] == "gmm-map":
            continue
        out = machine_path(recipe, work, system)
        steps.append(FunctionStep(
            f"train:{system}", lambda ctx, system=system, s=s, out=out: _train(ctx, system, s, out),
            lambda s=s: [os.fspath(work / "ubm.h5"), *_feature_inputs(recipe, work, s["data"]),
                         *_labels(recipe, s["data"])],
            {**s, "seed": recipe["seed"], **selection(recipe)}, [out]))
    return steps


from . import _steps_scores  # noqa: E402,F401  (registers score, norm, calibrate, evaluate)
