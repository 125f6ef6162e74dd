"""The demo as a recipe: the embedded Japanese Vowels data exported as feature files and lists,
and a recipe file (``emkit run``) that trains, enrols and scores the demo's systems with the
hyper-parameters of :class:`~emkit.demo.DemoConfig`.

``emkit demo --export DIR`` writes::

    DIR/recipe.toml            the recipe (examples/demo_recipe.toml is this file for the defaults)
    DIR/data/train.npz         session 0: 270 utterances (UBM, subspaces, enrolment)
    DIR/data/probes.npz        session 1: 370 utterances (probes)
    DIR/data/utt2spk           speakers of session 0
    DIR/lists/enroll           one model per speaker from its session-0 utterances (spk2utt)
    DIR/lists/trials           every model against every probe, with labels

and ``emkit run DIR/recipe.toml`` gives the demo's numbers (:func:`recipe_rows` reads them back
in the demo's table layout).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .experiment import DemoConfig

__all__ = ["recipe_text", "export_demo", "recipe_rows", "run_demo_recipe"]


def recipe_text(config: DemoConfig | None = None, seed: int = 0, work_dir: str = "work") -> str:
    """The recipe (TOML text) of the demo's systems with ``config``'s hyper-parameters.

    Parameters
    ----------
    config : DemoConfig or None, default None
        The systems' hyper-parameters (None: ``DemoConfig()``).
    seed : int, default 0
        The recipe's seed (its systems' random states).
    work_dir : str, default "work"
        Where the recipe's outputs go, relative to the recipe.

    Returns
    -------
    str
        The recipe, as ``emkit run`` reads it.

    Raises
    ------
    ValueError
        A ``config`` whose PLDA a recipe cannot train (not the default two-covariance PLDA).
    """
    cfg = config or DemoConfig()
    if cfg.plda_model != "two-covariance" or cfg.plda_dim_f is not None:
        raise ValueError("config: a recipe trains the default PLDA (two-covariance, full rank); "
                         f"got plda_model={cfg.plda_model!r}, plda_dim_f={cfg.plda_dim_f!r}")
    systems = {
        "gmm-map": f'kind = "gmm-map"\nrelevance_factor = {cfg.relevance_factor!r}',
        "isv": f'kind = "isv"\nrank_u = {cfg.isv_rank}\niterations = {cfg.fa_iterations}\n'
               f'relevance_factor = {cfg.isv_relevance_factor!r}',
        "jfa": f'kind = "jfa"\nrank_u = {cfg.jfa_rank_u}\nrank_v = {cfg.jfa_rank_v}\n'
               f'iterations = {cfg.fa_iterations}\n'
               f'relevance_factor = {cfg.jfa_relevance_factor!r}',
        "ivector-cosine": f'kind = "ivector"\ndim = {cfg.ivector_dim}\n'
                          f'iterations = {cfg.ivector_iterations}\nbackend = "cosine"',
        "ivector-plda": f'kind = "ivector"\ndim = {cfg.ivector_dim}\n'
                        f'iterations = {cfg.ivector_iterations}\nbackend = "plda"',
    }
    selection = "" if cfg.gselect is None else (
        f"\ngselect = {cfg.gselect}\nmin_posterior = {cfg.min_posterior!r}")
    blocks = "\n\n".join(f"[systems.{name}]\n{text}" for name, text in systems.items()
                         if name in cfg.systems)
    return f"""\
# emkit demo as a recipe: UCI Japanese Vowels (embedded in emkit), the demo's systems and
# hyper-parameters (emkit.demo.DemoConfig, chosen by cross-validation on session 0).
# Write it with its data:  emkit demo --export DIR;  run it:  emkit run DIR/recipe.toml
# Training and enrolment on session 0, probes from session 1 (closed set: 9 speakers).

work_dir = {json.dumps(work_dir)}
seed = {int(seed)}

[data.train]
features = ["data/train.npz"]
utt2spk = "data/utt2spk"

[data.all]
features = ["data/train.npz", "data/probes.npz"]

[ubm]
data = "train"
gaussians = {cfg.n_gaussians}
iterations = {cfg.ubm_iterations}
kmeans_iterations = {cfg.kmeans_iterations}{selection}

{blocks}

[conditions.eval]
data = "all"
enroll = "lists/enroll"
trials = "lists/trials"

[evaluation]
p_target = [0.01, 0.001]
title = "emkit demo: Japanese Vowels (seed {seed})"
"""


def export_demo(directory, config: DemoConfig | None = None, seed: int = 0,
                work_dir: str = "work") -> list:
    """Write the demo's data, lists and recipe into ``directory``.

    Parameters
    ----------
    directory : str or path-like
        Created if needed; the demo's files in it are replaced.
    config : DemoConfig or None, default None
        The systems' hyper-parameters (None: ``DemoConfig()``).
    seed : int, default 0
        The recipe's seed (its systems' random states).
    work_dir : str, default "work"
        Where the recipe's outputs go, relative to ``directory``.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    FileExistsError
        A recipe or list there differs from the demo's (one the user edited): nothing replaced.
    """
    from .datasets import load_japanese_vowels
    from .io.atomic import atomic_write
    from .io.atomic import atomic_path

    text = recipe_text(config, seed, work_dir)
    out = Path(directory)
    for d in (out, out / "data", out / "lists"):
        d.mkdir(parents=True, exist_ok=True)
    jv = load_japanese_vowels()
    train, probes = jv.indices(session=0), jv.indices(session=1)
    speakers = np.unique(jv.speaker_ids[train])
    texts = {
        "data/utt2spk": "".join(f"{jv.utterance_ids[i]} spk{jv.speaker_ids[i]}\n" for i in train),
        "lists/enroll": "".join(
            f"spk{s} " + " ".join(jv.utterance_ids[i] for i in train if jv.speaker_ids[i] == s)
            + "\n" for s in speakers),
        "lists/trials": "".join(
            f"spk{s} {jv.utterance_ids[i]} "
            f"{'target' if jv.speaker_ids[i] == s else 'nontarget'}\n"
            for s in speakers for i in probes),
        "recipe.toml": text,
    }
    edited = _edited_since_export(out, texts)
    if edited:
        raise FileExistsError(f"{out / edited[0]} exists and differs from the demo's (edited?): refusing "
                              f"to replace it; run it with 'emkit run {out / 'recipe.toml'}', or remove it "
                              "(or choose another folder) for the demo's")
    written = []
    for name, indices in (("train", train), ("probes", probes)):
        path = out / "data" / f"{name}.npz"
        with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, **{jv.utterance_ids[i]: jv.utterances[i] for i in indices})
        written.append(path)
    for name, content in texts.items():
        with atomic_write(out / name) as f:
            f.write(content)
        written.append(out / name)
    with atomic_write(out / _EXPORTED) as f:
        json.dump({name: _digest(content.encode()) for name, content in texts.items()}, f)
    return written


#: What the last export wrote (digests of its text files): a file that differs is one the user edited.
_EXPORTED = ".emkit-demo-export.json"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _edited_since_export(out: Path, texts: dict) -> list:
    """The text files of ``out`` that differ from both what the demo writes now and what its last
    export wrote there (a demo with other options may replace its own files, not the user's)."""
    from .io.small_files import read_bounded, read_json

    try:  # (a pipe in its place would block a plain read; a record it cannot be is ignored)
        exported = read_json(out / _EXPORTED, _MAX_DEMO_FILE_BYTES, "demo export record")
    except (OSError, ValueError):
        exported = None
    exported = exported if isinstance(exported, dict) else {}
    edited = []
    for name, content in texts.items():
        if not (out / name).is_file():
            continue
        try:
            digest = _digest(read_bounded(out / name, _MAX_DEMO_FILE_BYTES, "demo text file"))
        except FileNotFoundError:
            continue
        except ValueError:  # larger than any the demo writes, or no longer a regular file
            digest = None
        if digest != _digest(content.encode()) and (digest is None or digest != exported.get(name)):
            edited.append(name)
    return edited


#: Larger than any text file the demo writes (its lists: a few hundred KB at most).
_MAX_DEMO_FILE_BYTES = 16 * 2**20


def recipe_rows(results_json) -> list:
    """The demo table's rows from the ``results.json`` of the recipe's run.

    Parameters
    ----------
    results_json : str or path-like
        The ``results.json`` that ``emkit run`` wrote.

    Returns
    -------
    list of tuple
        ``(system, title, EER, minDCF(0.01), minDCF(0.001))`` of each system run, in the demo's
        order.
    """
    from .experiment import SYSTEM_TITLES
    from .recipe._report import read_results

    rows = {r["system"]: r for r in read_results(results_json)}
    return [(k, SYSTEM_TITLES[k], rows[k]["eer"], rows[k]["min_dcf"]["0.01"],
             rows[k]["min_dcf"]["0.001"]) for k in SYSTEM_TITLES if k in rows]


def run_demo_recipe(output, *, seed: int = 0, config: DemoConfig | None = None,
                    progress: bool = True, echo=print, step_echo=None):
    """``emkit demo``: export the demo's recipe and data into ``output``, run the recipe there
    (every step: ``force``), and print the protocol and the demo's table.

    Writes ``output/recipe.toml`` (work_dir ``.``), ``data/``, ``lists/``, the recipe's outputs
    (``ubm.h5``, ``systems/``, ``results.json``, ``det.png``, ``report.md``),
    ``scores/<system>.txt`` (the raw scores) and ``results.txt`` (protocol and table).

    Parameters
    ----------
    output : str or path-like
        The directory (created if needed).
    seed : int, default 0
        The recipe's seed (its systems' random states).
    config : DemoConfig or None, default None
        The systems' hyper-parameters (None: ``DemoConfig()``).
    progress : bool, default True
        The recipe's progress bars (on stderr).
    echo : callable, default print
        Receives the protocol and the table, a line or block of text at a time.
    step_echo : callable or None, default None
        Receives the recipe's step lines (None: they are not shown).

    Returns
    -------
    DemoResult
        The table's rows, the files written, the protocol and the table (``scores`` left
        empty: read them from ``scores/``).

    Raises
    ------
    PermissionError
        ``output`` or its ``scores/`` cannot be written into.
    """
    import os
    import shutil
    import time

    from .demo import DemoResult, protocol_text, table_notes
    from .io._message_text import show_path
    from .io.atomic import atomic_write
    from .io.untrusted import open_regular
    from .recipe import run_recipe

    cfg = config or DemoConfig()
    start = time.perf_counter()
    out = Path(output)
    for d in (out, out / "scores"):
        d.mkdir(parents=True, exist_ok=True)
        if not os.access(d, os.W_OK | os.X_OK):
            raise PermissionError(f"cannot write into {show_path(d)}: no write permission")
    protocol = protocol_text(cfg)
    echo(protocol)
    files = export_demo(out, cfg, seed, work_dir=".")
    results, report = run_recipe(out / "recipe.toml", force=True, progress=progress,
                                 echo=step_echo)
    rows = recipe_rows(out / "results.json")
    for system, *_ in rows:
        target = out / "scores" / f"{system}.txt"
        # (the recipe's own output: a pipe or a link put in its place is refused, never read)
        with atomic_write(target, "wb") as f, \
                open_regular(out / "systems" / system / "eval.raw.txt", follow_links=False) as src:
            shutil.copyfileobj(src, f)
        files.append(target)
    table = table_notes(rows, cfg)
    with atomic_write(out / "results.txt") as f:
        f.write(f"{protocol}\n\nseed {seed}\n{table}\n")
    files += [out / "results.txt", report, out / "results.json", out / "det.png"]
    echo("")
    echo(table)
    return DemoResult(rows, {}, None, [], [], {}, {}, [os.fspath(f) for f in files], protocol,
                      table, time.perf_counter() - start)
