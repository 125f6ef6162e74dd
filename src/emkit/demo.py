"""``emkit demo``: a whole speaker-verification experiment on the embedded Japanese Vowels data.

:func:`run_demo` trains a UBM, then GMM-MAP, ISV, JFA and the i-vector systems of
:mod:`emkit.experiment` on session 0, probes them with session 1 (see :data:`PROTOCOL`) and prints
EER and minDCF per system.  A system whose module is not installed is skipped with a note.  The
default hyper-parameters (:class:`DemoConfig`) were chosen by cross-validation on session 0
alone (``scripts/select_demo_hyperparameters.py``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .evaluation import metrics
from ._config import config_context
from .experiment import (SYSTEM_TITLES, SYSTEMS, IVectorBackend, SystemUnavailable, compute_stats,
                         enroll, save_png, score, train_ubm)
from .factor_analysis import ISVMachine, JFAMachine
from .ivector import IVectorMachine

__all__ = ["DemoConfig", "DemoResult", "run_demo", "format_table", "PROTOCOL", "DATA_NOTES"]


PROTOCOL = """\
Protocol: UCI Japanese Vowels (Kudo, Toyama & Shimbo 1999, doi:10.24432/C5NS47, CC BY 4.0):
  9 speakers, 12 LPC cepstra per frame, 640 utterances in two sessions recorded on different
  occasions (session 0 = UCI "train", session 1 = UCI "test").
  training   session 0: {n_train} utterances, {n_frames} frames -> UBM ({C} Gaussians), ISV/JFA
             subspaces, i-vector extractor (R = {R}), whitening, WCCN and PLDA
  enrolment  session 0: one model per speaker from its 30 utterances ({n_models} models)
  probes     session 1: {n_probes} utterances, each scored against every model
  trials     {n_trials}: {n_target} target, {n_nontarget} non-target
  Closed set: with only 9 speakers, the background data are the enrolled speakers' own session-0
  utterances; the numbers show a working pipeline, they are not a benchmark."""


#: One line under the demo's table for a system that is weak because of the data, not a bug.
DATA_NOTES = {
    "jfa": "JFA is weak here for lack of speakers: its speaker subspace V (rank {cfg.jfa_rank_v}) "
           "is learnt from the 9 training speakers alone; it needs hundreds.",
}


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of the demo's models (the defaults run in a few seconds).

    The defaults of the UBM size, relevance factors, ranks, i-vector dimension and PLDA model
    were chosen by ``scripts/select_demo_hyperparameters.py``: 3-fold cross-validation on the
    training session alone (the demo's evaluation trials, session 1, were never scored).  The
    utterances are short (7 to 29 frames), hence the small UBM and the large relevance factors.

    Attributes
    ----------
    n_gaussians : int, default 4
        Gaussians of the UBM.
    ubm_iterations : int, default 50
        Maximum-likelihood EM iterations of the UBM.
    kmeans_iterations : int, default 20
        k-means iterations of the UBM's initialisation.
    relevance_factor : float, default 64.0
        MAP relevance factor of the GMM-MAP enrolment.
    isv_rank : int, default 1
        Rank of ISV's session subspace U.
    isv_relevance_factor : float, default 64.0
        ISV's relevance factor.
    jfa_rank_u : int, default 2
        Rank of JFA's session subspace U.
    jfa_rank_v : int, default 8
        Rank of JFA's speaker subspace V.
    jfa_relevance_factor : float, default 256.0
        JFA's relevance factor.
    fa_iterations : int, default 10
        EM iterations of ISV and JFA.
    ivector_dim : int, default 10
        i-vector dimension (rank of the total-variability matrix T).
    ivector_iterations : int, default 10
        EM iterations of the i-vector extractor.
    plda_model : str, default "two-covariance"
        The :class:`~emkit.PLDA` model of the i-vector PLDA system.
    plda_dim_f : int or None, default None
        Rank of the PLDA speaker subspace F (None: the PLDA default; ignored by the
        two-covariance model).
    systems : tuple of str
        The systems run, among ``"gmm-map"``, ``"isv"``, ``"jfa"``, ``"ivector-cosine"`` and
        ``"ivector-plda"`` (default: all, in that order).
    gselect : int or None, default None
        Gaussians kept per frame in the statistics (None: all, exact statistics).
    min_posterior : float, default 0.0
        With ``gselect``: posteriors below it are dropped.
    """

    n_gaussians: int = 4
    ubm_iterations: int = 50
    kmeans_iterations: int = 20
    relevance_factor: float = 64.0      # GMM-MAP enrolment
    isv_rank: int = 1
    isv_relevance_factor: float = 64.0
    jfa_rank_u: int = 2
    jfa_rank_v: int = 8
    jfa_relevance_factor: float = 256.0
    fa_iterations: int = 10
    ivector_dim: int = 10
    ivector_iterations: int = 10
    plda_model: str = "two-covariance"
    plda_dim_f: int | None = None
    systems: tuple = tuple(SYSTEM_TITLES)
    gselect: int | None = None          # Gaussian selection in the statistics (None: exact)
    min_posterior: float = 0.0          # with gselect: posteriors below it dropped


@dataclass
class DemoResult:
    """Outcome of :func:`run_demo`.

    Attributes
    ----------
    rows : list of tuple
        ``(system, title, EER, minDCF at 0.01, minDCF at 0.001)`` of each system that ran, the
        rates as fractions.
    scores : dict of str to ndarray
        ``{system: scores}``, each of shape (n_models, n_probes).
    labels : ndarray of shape (n_models, n_probes)
        True for target trials.
    model_ids : list of str
        The (n_models,) enrolled speakers, ``"spk<n>"``.
    probe_ids : list of str
        The (n_probes,) probe utterances.
    skipped : dict of str to str
        ``{system: reason}`` of the systems skipped (a module not available).
    failed : dict of str to str
        ``{system: error}`` of the systems that raised.
    files : list of str
        The files written (empty without ``output``).
    protocol : str
        The protocol text (:data:`PROTOCOL`, filled in).
    table : str
        The results table, with its notes.
    seconds : float
        Wall-clock duration of the run.
    """

    rows: list
    scores: dict          # system -> (n_models, n_probes) scores
    labels: np.ndarray    # (n_models, n_probes) True for target trials
    model_ids: list
    probe_ids: list
    skipped: dict         # system -> reason (module not available)
    failed: dict          # system -> error (the system raised)
    files: list
    protocol: str
    table: str
    seconds: float


def protocol_text(cfg: DemoConfig, jv=None) -> str:
    """:data:`PROTOCOL` filled in with the data's and ``cfg``'s sizes."""
    if jv is None:
        from .datasets import load_japanese_vowels

        jv = load_japanese_vowels()
    train, probes = jv.indices(session=0), jv.indices(session=1)
    speakers = np.unique(jv.speaker_ids[train])
    labels = jv.speaker_ids[probes][None, :] == speakers[:, None]
    return PROTOCOL.format(n_train=len(train), C=cfg.n_gaussians, R=cfg.ivector_dim,
                           n_frames=sum(len(jv.utterances[i]) for i in train),
                           n_models=len(speakers), n_probes=len(probes), n_trials=labels.size,
                           n_target=int(labels.sum()), n_nontarget=int((~labels).sum()))


def table_notes(rows, cfg: DemoConfig) -> str:
    """The table of ``rows`` with the :data:`DATA_NOTES` of its systems under it."""
    explained = [DATA_NOTES[k].format(cfg=cfg) for k, *_ in rows if k in DATA_NOTES]
    return format_table(rows) + "".join(f"\nnote: {text}" for text in explained)


def format_table(rows) -> str:
    """The results table: one line per system, EER in percent, minDCF at 0.01 and 0.001.

    Parameters
    ----------
    rows : list of tuple
        ``(system, title, EER, minDCF at 0.01, minDCF at 0.001)``, as in
        :attr:`DemoResult.rows` (EER as a fraction).

    Returns
    -------
    str
        A header line and one line per row, without a trailing newline.
    """
    lines = [f"{'system':<26} {'EER (%)':>8} {'minDCF(0.01)':>13} {'minDCF(0.001)':>14}"]
    for _, title, e, d2, d3 in rows:
        lines.append(f"{title:<26} {100 * e:>8.2f} {d2:>13.3f} {d3:>14.3f}")
    return "\n".join(lines)


def _demo_systems(cfg: DemoConfig, seed: int, ubm, train_stats, train_labels, progress):
    """{system: machine factory} (the i-vector systems share one extractor)."""

    def isv():
        return ISVMachine(r_U=cfg.isv_rank, em_iterations=cfg.fa_iterations, ubm=ubm,
                          relevance_factor=cfg.isv_relevance_factor, random_state=seed).fit(
                              train_stats, train_labels)

    def jfa():
        return JFAMachine(r_U=cfg.jfa_rank_u, r_V=cfg.jfa_rank_v, em_iterations=cfg.fa_iterations,
                          ubm=ubm, relevance_factor=cfg.jfa_relevance_factor,
                          random_state=seed).fit(
                              train_stats, train_labels)

    backend = {}

    def ivector():
        if "value" not in backend:
            machine = IVectorMachine(ubm, dim_t=cfg.ivector_dim, random_state=seed,
                                     max_iterations=cfg.ivector_iterations).fit(train_stats)
            backend["value"] = IVectorBackend(machine, plda_model=cfg.plda_model,
                                              plda_dim_f=cfg.plda_dim_f).fit(train_stats,
                                                                             train_labels)
        return backend["value"]

    return {"gmm-map": lambda: ubm, "isv": isv, "jfa": jfa, "ivector-cosine": ivector,
            "ivector-plda": ivector}


def run_demo(output=None, *, seed: int = 0, config: DemoConfig | None = None,
             progress: bool = True, echo=print) -> DemoResult:
    """Run the demo experiment, and write its files to ``output``.

    The same ``seed`` and ``config`` give identical numbers.  A system that raises is reported
    in :attr:`DemoResult.failed` and the others still run.

    Parameters
    ----------
    output : str, path-like or None, default None
        A directory (made if missing) for the models (``ubm.h5``, ``<system>_models.h5``...),
        ``scores/<system>.txt``, ``det.png`` and ``results.txt``; None writes nothing.
    seed : int, keyword-only, default 0
        Seed of every random initialisation.
    config : DemoConfig or None, keyword-only
        Model sizes and the systems to run (None: ``DemoConfig()``).
    progress : bool, keyword-only, default True
        Show progress bars.
    echo : callable, keyword-only, default print
        Called with each text: the protocol, step messages, notes and the final table.

    Returns
    -------
    DemoResult

    Raises
    ------
    ValueError
        ``config.systems`` names an unknown system.
    PermissionError
        ``output`` (or its ``scores`` folder) is not writable.
    """
    from .datasets import load_japanese_vowels
    from .io._message_text import show_path
    from .io.atomic import atomic_write
    from .io.lists import write_scores

    cfg = config or DemoConfig()
    unknown = set(cfg.systems) - set(SYSTEM_TITLES)
    if unknown:
        raise ValueError(f"config.systems: unknown system(s) {sorted(unknown)}; known: "
                         f"{list(SYSTEM_TITLES)}")
    start = time.perf_counter()
    out_dir = None
    if output is not None:
        out_dir = Path(output)
        for d in (out_dir, out_dir / "scores"):
            d.mkdir(parents=True, exist_ok=True)
            if not os.access(d, os.W_OK | os.X_OK):
                raise PermissionError(f"cannot write into {show_path(d)}: no write permission")

    jv = load_japanese_vowels()
    train = jv.indices(session=0)
    probes = jv.indices(session=1)
    speakers = np.unique(jv.speaker_ids[train])
    model_ids = [f"spk{s}" for s in speakers]
    probe_ids = [jv.utterance_ids[i] for i in probes]
    train_labels = jv.speaker_ids[train]
    labels = jv.speaker_ids[probes][None, :] == speakers[:, None]
    frames = np.concatenate([jv.utterances[i] for i in train])
    protocol = protocol_text(cfg, jv)
    echo(protocol)
    files = []

    def write(name, writer):
        if out_dir is not None:
            writer(out_dir / name)
            files.append(str(out_dir / name))

    with config_context(progress=progress):
        echo(f"Training the UBM: {cfg.n_gaussians} Gaussians, k-means then ML ...")
        ubm = train_ubm(frames, cfg.n_gaussians, max_iterations=cfg.ubm_iterations,
                        kmeans_iterations=cfg.kmeans_iterations, seed=seed)
        write("ubm.h5", ubm.save)
        selection = {"top_k": cfg.gselect, "min_posterior": cfg.min_posterior
                     if cfg.gselect else None}
        train_stats = compute_stats(ubm, [jv.utterances[i] for i in train], progress=progress,
                                    desc="training statistics", **selection)
        probe_stats = compute_stats(ubm, [jv.utterances[i] for i in probes], progress=progress,
                                    desc="probe statistics", **selection)
        per_model = [[train_stats[k] for k in np.flatnonzero(train_labels == s)] for s in speakers]

        factories = _demo_systems(cfg, seed, ubm, train_stats, train_labels, progress)
        machine_files = {"isv": "isv.h5", "jfa": "jfa.h5", "ivector-cosine": "ivector.h5"}
        rows, all_scores, skipped, failed = [], {}, {}, {}
        for system in [s for s in SYSTEM_TITLES if s in cfg.systems]:
            echo(f"System {SYSTEM_TITLES[system]} ...")
            try:
                machine = factories[system]()
                models = enroll(machine, model_ids, per_model, progress=progress,
                                relevance_factor=cfg.relevance_factor,
                                backend=SYSTEMS[system].backend or "cosine")
                s = score(models, probe_stats, progress=progress)
                if not np.isfinite(s).all():
                    raise FloatingPointError("non-finite scores")
            except SystemUnavailable as exc:
                skipped[system] = str(exc)
                echo(f"  note: {SYSTEM_TITLES[system]} skipped: {exc}")
                continue
            except Exception as exc:  # a broken system must not hide the others' results
                failed[system] = f"{type(exc).__name__}: {exc}"
                echo(f"  error: {SYSTEM_TITLES[system]} failed: {failed[system]}")
                continue
            if system in machine_files:
                write(machine_files[system], machine.save)
            write(f"{system}_models.h5", models.save)
            all_scores[system] = s
            rows.append((system, SYSTEM_TITLES[system], metrics.eer(s[labels], s[~labels]),
                         metrics.min_dcf(s[labels], s[~labels], 0.01),
                         metrics.min_dcf(s[labels], s[~labels], 0.001)))
            flat_models = [m for m in model_ids for _ in probe_ids]
            write(f"scores/{system}.txt", lambda p, s=s, m=flat_models: write_scores(
                p, m, probe_ids * len(model_ids), s.ravel(), labels.ravel()))

    table = table_notes(rows, cfg)
    if rows and out_dir is not None:
        # the rates run from 1/2960 (false alarms) and 1/370 (misses) to 1: show 0.2 % to 90 %
        fig = metrics.plot_det_curves({title: (all_scores[k][labels], all_scores[k][~labels])
                                       for k, title, *_ in rows}, limits=(0.002, 0.9),
                                      title=f"emkit demo: Japanese Vowels (seed {seed})")
        write("det.png", lambda p: save_png(fig, p))
    seconds = time.perf_counter() - start
    notes = "".join(f"\nnote: {SYSTEM_TITLES[k]} skipped: {v}" for k, v in skipped.items())
    notes += "".join(f"\nerror: {SYSTEM_TITLES[k]} failed: {v}" for k, v in failed.items())
    if out_dir is not None:
        def write_results(p):
            with atomic_write(p) as f:
                f.write(f"{protocol}\n\nseed {seed}\n{table}\n{notes.strip()}\n")
        write("results.txt", write_results)
    echo("")
    echo(table + notes)
    return DemoResult(rows, all_scores, labels, model_ids, probe_ids, skipped, failed, files,
                      protocol, table, seconds)
