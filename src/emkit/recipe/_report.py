"""The report at the end of a run: results table, DET plot and step timings (Markdown)."""

from __future__ import annotations

from pathlib import Path

from ..evaluation.text import format_measure
from ..io.atomic import atomic_write
from ..io.small_files import read_json
from ..io.untrusted import FeatureError, show_path

__all__ = ["read_results", "results_table", "timings_table", "write_report"]


#: Largest ``results.json`` read (a row per system and condition, each well under 4 KB).
MAX_RESULTS_BYTES = 64 * 2**20


def read_results(path) -> list:
    """The rows of the evaluation step's ``results.json`` at ``path`` (a dict per system and
    condition).  Read as an untrusted file (:func:`~emkit.io.small_files.read_json`: a regular
    file, never waited on, at most :data:`MAX_RESULTS_BYTES`); anything but a JSON list of
    objects is a :class:`~emkit.io.untrusted.FeatureError` naming the file."""
    rows = read_json(path, MAX_RESULTS_BYTES, "results file")
    if not isinstance(rows, list):
        got = type(rows).__name__
    else:
        got = next((f"a list whose item {i} is {type(row).__name__}"
                    for i, row in enumerate(rows) if not isinstance(row, dict)), None)
    if got is not None:
        raise FeatureError(f"{show_path(path)}: expected a JSON list of objects (a row per "
                           f"system and condition); got {got}; not a results file")
    return rows


def results_table(rows, p_targets) -> str:
    """A Markdown table of the evaluation rows (``results.json``)."""
    head = ["system", "condition", "scores", "targets", "non-targets", "raw EER (%)", "EER (%)"]
    for p in p_targets:
        head += [f"minDCF({p:g})", f"actDCF({p:g})"]
    head += ["Cllr", "min Cllr"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["system"], r["condition"], r["scores"], str(r["targets"]),
                 str(r["nontargets"]), format_measure(100 * r["eer_raw"], 2),
                 format_measure(100 * r["eer"], 2)]
        for p in p_targets:
            cells += [format_measure(r[k][str(float(p))], 4) for k in ("min_dcf", "act_dcf")]
        cells += [format_measure(r["cllr"], 4), format_measure(r["min_cllr"], 4)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def timings_table(results) -> str:
    lines = ["| step | status | seconds | summary |", "|---|---|---:|---|"]
    for r in results:
        lines.append(f"| {r.name} | {r.status} | {r.seconds:.2f} | {r.summary} |")
    total = sum(r.seconds for r in results)
    lines.append(f"| total | | {total:.2f} | |")
    return "\n".join(lines)


def write_report(recipe, results) -> tuple:
    """Write ``<work_dir>/report.md``; returns ``(path, results table)``."""
    work = Path(recipe["work_dir"])
    rows = read_results(work / "results.json")
    table = results_table(rows, recipe["evaluation"]["p_target"])
    text = (f"# emkit run {recipe['recipe']}\n\n## Results\n\n{table}\n\n"
            "actDCF and Cllr read the scores as natural-log likelihood ratios (meaningful after "
            "calibration); EER, minDCF and min Cllr do not depend on calibration.  raw EER: "
            "before score normalisation and calibration.\n\n"
            "![DET curves](det.png)\n\n## Steps (this run)\n\n" + timings_table(results) + "\n")
    with atomic_write(work / "report.md") as f:
        f.write(text)
    return work / "report.md", table
