"""Reading and validating a recipe file (TOML): every error names the recipe file and the key.

Layout (every key and default: ``docs/recipes.md``; an example: ``examples/espeak_recipe/recipe.toml``)::

    work_dir = "work"                  # outputs, stamps and the report (relative to the recipe)
    seed = 0
    [data.NAME]        audio = DIR | features = [FILES or FOLDERS], utt2spk = FILE (optional)
    [features]         options of emkit.audio.FeatureConfig / KaldiOptions (audio sets only),
                       and keep_going (leave out the utterances that cannot be used)
    [ubm]              data = SET, gaussians, iterations, kmeans_iterations, compute_dtype
                       ("float64" or "float32", the EM's products), gselect and min_posterior
                       (Gaussian selection in the statistics of the systems)
    [systems.NAME]     kind = "gmm-map" | "isv" | "jfa" | "ivector", and its options (ivector:
                       dim, iterations, backend, lda_dim and plda_dim, as train-ivector's)
    [conditions.NAME]  data = SET, enroll = FILE (spk2utt), trials = FILE (with labels)
    [norm]             method = "z" | "t" | "zt" | "s" | "as", cohort = SET, top_n, ddof
    [calibration]      train = CONDITION, prior
    [evaluation]       p_target = [...], c_miss, c_fa, title (of the DET plot)

The NAMEs of data sets, systems and conditions name files and directories in work_dir: each
must be a plain file name (printable, no '/' or '\\', not '.' or '..', at most 100 bytes).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

__all__ = ["RecipeError", "load_recipe", "validate", "SYSTEM_KINDS", "NORM_METHODS"]

NORM_METHODS = ("z", "t", "zt", "s", "as")
INT, FLOAT, STR, BOOL, STRS, FLOATS = "an integer", "a number", "a string", "a boolean", \
    "a list of strings", "a list of numbers"


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the recipe file and the key."""


def _is(value, kind) -> bool:
    if kind == INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == FLOAT:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == STR:
        return isinstance(value, str)
    if kind == BOOL:
        return isinstance(value, bool)
    if kind == STRS:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, list) and all(_is(v, FLOAT) for v in value)  # FLOATS


# section -> {key: (kind, default)}; default None: optional without default, ...: required
COMMON_SYSTEM = {"kind": (STR, ...), "data": (STR, None), "relevance_factor": (FLOAT, 4.0)}
SYSTEM_KINDS = {
    "gmm-map": {},
    "isv": {"rank_u": (INT, 10), "iterations": (INT, 10)},
    "jfa": {"rank_u": (INT, 10), "rank_v": (INT, 10), "iterations": (INT, 10)},
    "ivector": {"dim": (INT, 100), "iterations": (INT, 10), "backend": (STR, "plda"),
                "lda_dim": (INT, None), "plda_dim": (INT, None)},
}
#: optional keys left out of a system's parameters when not set (so that the stamps of recipes
#: written before they existed stay valid)
OPTIONAL_SYSTEM_KEYS = ("lda_dim", "plda_dim")
SECTIONS = {
    "ubm": {"data": (STR, ...), "gaussians": (INT, 64), "iterations": (INT, 25),
            "threshold": (FLOAT, 1e-5), "kmeans_iterations": (INT, 20), "compute_dtype": (STR, "float64"),
            "gselect": (INT, None), "min_posterior": (FLOAT, 0.0)},
    "data": {"audio": (STR, None), "features": (STRS, None), "utt2spk": (STR, None)},
    "conditions": {"data": (STR, ...), "enroll": (STR, ...), "trials": (STR, ...)},
    "norm": {"method": (STR, ...), "cohort": (STR, ...), "top_n": (INT, 200), "ddof": (INT, 1)},
    "calibration": {"train": (STR, ...), "prior": (FLOAT, 0.5)},
    "evaluation": {"p_target": (FLOATS, [0.01]), "c_miss": (FLOAT, 1.0), "c_fa": (FLOAT, 1.0),
                   "title": (STR, "DET curves")},
}
TOP = {"work_dir": (STR, "work"), "seed": (INT, 0), "jobs": (INT, 1)}
TABLES = ("data", "features", "ubm", "systems", "conditions", "norm", "calibration",
          "evaluation")
#: data sets, systems and conditions name files and directories in work_dir (with suffixes and
#: in the stamps' names, so that these stay under the usual 255-byte limit)
MAX_NAME_BYTES = 100
#: Largest recipe file read (a recipe names its lists and folders, it does not hold them).
MAX_RECIPE_BYTES = 4 * 2**20


def _show(value) -> str:
    """A recipe value for a message: strings shortened, containers by their type only."""
    from ..io.untrusted import show_key

    if isinstance(value, str):
        return show_key(value)
    if isinstance(value, int) and len(text := repr(value)) > 24:  # tomllib's reach 4300 digits
        return f"{text[:20]}... (an integer of {len(text.lstrip('-'))} digits)"
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    return type(value).__name__


class _Checker:
    def __init__(self, path: Path):
        self.path, self.base = path, Path(os.path.abspath(path)).parent

    def fail(self, key: str, text: str):
        if len(key) > 200 or not key.isprintable():  # a key of the file (e.g. an unknown one)
            key = _show(key)
        raise RecipeError(f"{self.path}: {key}: {text}")

    def table(self, value, key: str) -> dict:
        if not isinstance(value, dict):
            self.fail(key, f"must be a table; got {type(value).__name__}")
        return value

    def fields(self, table: dict, spec: dict, key: str) -> dict:
        """``table`` checked against ``spec`` (name -> (type, default or ... if required));
        ``key``: the table's name ("": the recipe's top level, whose keys are named bare)."""
        table = self.table(table, key or "recipe")
        prefix = f"{key}." if key else ""
        unknown = sorted(set(table) - set(spec))
        if unknown:
            self.fail(f"{prefix}{unknown[0]}", f"unknown key (known: {', '.join(sorted(spec))})")
        out = {}
        for name, (kind, default) in spec.items():
            if name not in table:
                if default is ...:
                    self.fail(f"{prefix}{name}", "missing (required)")
                out[name] = default
                continue
            if not _is(table[name], kind):
                self.fail(f"{prefix}{name}", f"must be {kind}; got {type(table[name]).__name__}")
            out[name] = self.number(table[name], f"{prefix}{name}") if kind == FLOAT \
                else table[name]
        return out

    def number(self, value, key: str) -> float:
        """``value`` (an int or float of the file) as a float."""
        try:
            return float(value)
        except OverflowError:  # an integer of hundreds of digits
            self.fail(key, f"must be {FLOAT} within float64's range; got {_show(value)}")

    def file(self, value: str, key: str, directory: bool = False) -> str:
        p = self.base / value
        try:
            found = p.is_dir() if directory else p.is_file()
        except OSError as exc:  # e.g. a name too long
            self.fail(key, f"cannot use {_show(value)}: {exc.strerror}")
        if not found:
            self.fail(key, f"no such {'directory' if directory else 'file'} {_show(value)} "
                           f"(relative to {self.base})")
        return os.fspath(p)

    def name(self, name: str, section: str) -> str:
        """A data set, system or condition name: a plain name for a file in work_dir."""
        if (name in ("", ".", "..") or "/" in name or "\\" in name or not name.isprintable()
                or len(name.encode("utf-8", "replace")) > MAX_NAME_BYTES):
            self.fail(section, f"name {_show(name)} cannot name a file in work_dir: use a plain "
                               "name (printable, no '/' or '\\', not '.' or '..', at most "
                               f"{MAX_NAME_BYTES} bytes)")
        return name

    def positive(self, value, key: str, low: float = 0.0, strict: bool = True):
        if value is not None and (value <= low if strict else value < low):
            self.fail(key, f"must be {'>' if strict else '>='} {low:g}; got {_show(value)}")

    def ref(self, value: str, known: dict, key: str, what: str):
        if value not in known:
            defined = sorted(known)
            listed = ", ".join(defined[:10]) + (", ..." if len(defined) > 10 else "")
            self.fail(key, f"names {what} {_show(value)}, which is not defined (defined: "
                           f"{listed or 'none'})")


def _ivector_dims(chk: _Checker, key: str, s: dict, labelled: bool) -> None:
    """An i-vector system's lda_dim (at most dim, needs speaker labels) and plda_dim (at most
    the PLDA's input dimension, with the PLDA back-end only)."""
    if s["lda_dim"] is not None:
        if not labelled:
            chk.fail(f"{key}.lda_dim", "needs speaker labels (LDA is trained on the speakers): "
                                       f"data set {s['data']!r} has no utt2spk")
        if s["lda_dim"] > s["dim"]:
            chk.fail(f"{key}.lda_dim", f"must be at most dim ({_show(s['dim'])}); got "
                                       f"{_show(s['lda_dim'])}")
    if s["plda_dim"] is not None:
        if s["backend"] != "plda":
            chk.fail(f"{key}.plda_dim", f"applies to backend = 'plda' only; got backend = "
                                        f"{_show(s['backend'])}")
        limit, name = ((s["lda_dim"], "lda_dim") if s["lda_dim"] is not None
                       else (s["dim"], "dim"))
        if s["plda_dim"] > limit:
            chk.fail(f"{key}.plda_dim", f"must be at most {name} ({_show(limit)}), the PLDA's "
                                        f"input dimension; got {_show(s['plda_dim'])}")


def _features(chk: _Checker, table: dict):
    """(FeatureConfig, keep_going) of the ``[features]`` table."""
    from ..audio import FeatureConfig, KaldiOptions

    table = dict(chk.table(table, "features"))
    keep_going = table.pop("keep_going", False)  # the step's option, not the features'
    if not _is(keep_going, BOOL):
        chk.fail("features.keep_going", f"must be {BOOL}; got {type(keep_going).__name__}")
    kaldi_keys = {f.name for f in dataclasses.fields(KaldiOptions)}
    other_keys = {f.name for f in dataclasses.fields(FeatureConfig)} - {"kaldi"}
    unknown = sorted(set(table) - kaldi_keys - other_keys)
    if unknown:
        chk.fail(f"features.{unknown[0]}", "unknown key (known: "
                 f"{', '.join(sorted(kaldi_keys | other_keys | {'keep_going'}))})")
    for name, value in table.items():
        if isinstance(value, (dict, list)):
            chk.fail(f"features.{name}", f"must be a single value; got {type(value).__name__}")
    # 16000 for a float option is 16000.0, as the other sections' numbers are: the step's stamp
    # records the values, and the same settings must give the same stamp
    floats = {f.name for cls in (KaldiOptions, FeatureConfig) for f in dataclasses.fields(cls)
              if f.type == "float"}
    table = {name: chk.number(value, f"features.{name}") if name in floats and _is(value, INT)
             else value
             for name, value in table.items()}
    from ..audio._kaldi_features import check_options

    try:
        kaldi = KaldiOptions(**{k: v for k, v in table.items() if k in kaldi_keys})
        config = FeatureConfig(kaldi=kaldi, **{k: v for k, v in table.items() if k in other_keys})
        check_options(kaldi)  # what kaldi-native-fbank refuses (too many mel bins...)
        return config, keep_going
    except ImportError:  # no audio extra: the features step says how to install it
        return config, keep_going
    except (TypeError, ValueError) as exc:  # the message quotes the value: shortened
        text = str(exc)
        name, _, rest = text.partition(" ")
        if name in table and rest:  # "norm_vars must be a boolean ...": the key named once
            chk.fail(f"features.{name}", rest if len(rest) <= 300 else rest[:297] + "...")
        chk.fail("features", text if len(text) <= 300 else text[:297] + "...")


def _feature_files(chk: _Checker, value: str, key: str) -> list:
    """The files of one ``features`` entry: the file, or a folder's feature files (as the
    command line reads a folder given as FEATURES)."""
    from ..io.features import FeatureError, list_feature_directory

    folder = chk.base / value
    try:
        is_folder = folder.is_dir()
    except OSError:  # (a name too long: chk.file says so)
        is_folder = False
    if not is_folder:
        return [chk.file(value, f"{key}.features")]
    try:
        return list_feature_directory(folder)
    except FeatureError as exc:
        chk.fail(f"{key}.features", str(exc))


def _data(chk: _Checker, name: str, table: dict) -> dict:
    key = f"data.{name}"
    d = chk.fields(table, SECTIONS["data"], key)
    if (d["audio"] is None) == (d["features"] is None):
        chk.fail(key, "give exactly one of 'audio' (a directory or Kaldi data directory) and "
                      "'features' (a list of feature files)")
    if d["audio"] is not None:
        d["audio"] = chk.file(d["audio"], f"{key}.audio", directory=True)
        default = Path(d["audio"]) / "utt2spk"
        if d["utt2spk"] is None and default.is_file():
            d["utt2spk"] = os.fspath(default)  # already absolute
    else:
        if not d["features"]:
            chk.fail(f"{key}.features", "the list is empty")
        d["features"] = [path for f in d["features"] for path in _feature_files(chk, f, key)]
    if d["utt2spk"] is not None and not os.path.isabs(d["utt2spk"]):  # given in the recipe
        d["utt2spk"] = chk.file(d["utt2spk"], f"{key}.utt2spk")
    return d


def validate(doc: dict, path) -> dict:
    """Check a parsed recipe and fill in its defaults.

    Parameters
    ----------
    doc : dict
        The recipe as parsed from TOML.
    path : str or path-like
        The recipe file: relative paths are taken from its directory; messages name it.

    Returns
    -------
    dict
        The sections, with defaults filled in and absolute paths.

    Raises
    ------
    RecipeError
        Naming the file and the key: an unknown or missing key, a value of the wrong kind.
    """
    chk = _Checker(Path(path))
    unknown = sorted(set(doc) - set(TOP) - set(TABLES))
    if unknown:
        chk.fail(unknown[0], f"unknown key (known: {', '.join(sorted(set(TOP) | set(TABLES)))})")
    r = chk.fields({k: v for k, v in doc.items() if k in TOP}, TOP, "")
    r["work_dir"] = os.fspath(chk.base / r["work_dir"])
    chk.positive(r["jobs"], "jobs")
    r["recipe"] = os.fspath(path)
    for section in ("data", "ubm", "systems", "conditions"):
        if section not in doc:
            chk.fail(section, "missing (required table)")
    data = chk.table(doc["data"], "data")
    r["data"] = {chk.name(n, "data"): _data(chk, n, t) for n, t in data.items()}
    if not r["data"]:
        chk.fail("data", "no data set defined")
    r["keep_going"] = False
    if any(d["audio"] for d in r["data"].values()):
        r["features"], r["keep_going"] = _features(chk, doc.get("features", {}))
    elif "features" in doc:
        chk.fail("features", "feature options need a data set with 'audio'")
    r["ubm"] = chk.fields(doc["ubm"], SECTIONS["ubm"], "ubm")
    chk.ref(r["ubm"]["data"], r["data"], "ubm.data", "data set")
    for k in ("gaussians", "iterations", "kmeans_iterations", "gselect"):
        chk.positive(r["ubm"][k], f"ubm.{k}")
    u = r["ubm"]
    if u["gselect"] is not None and u["gselect"] > u["gaussians"]:
        chk.fail("ubm.gselect", f"must be at most ubm.gaussians ({_show(u['gaussians'])}); got "
                                f"{_show(u['gselect'])}")
    if not 0.0 <= u["threshold"] < float("inf"):
        chk.fail("ubm.threshold", f"must be a number >= 0 (0: no convergence test); got {u['threshold']!r}")
    if not 0.0 <= u["min_posterior"] < 1.0:
        chk.fail("ubm.min_posterior", f"must be in [0, 1); got {u['min_posterior']!r}")
    if u["min_posterior"] and u["gselect"] is None:
        chk.fail("ubm.min_posterior", "needs ubm.gselect (the Gaussians kept per frame)")
    if u["compute_dtype"] not in ("float64", "float32"):
        chk.fail("ubm.compute_dtype",
                 f"must be 'float64' or 'float32'; got {_show(u['compute_dtype'])}")
    r["systems"] = {}
    for name, table in chk.table(doc["systems"], "systems").items():
        key = f"systems.{chk.name(name, 'systems')}"
        kind = chk.table(table, key).get("kind")
        if kind not in SYSTEM_KINDS:
            chk.fail(f"{key}.kind", f"must be one of {', '.join(SYSTEM_KINDS)}; got "
                                    f"{_show(kind)}")
        s = chk.fields(table, {**COMMON_SYSTEM, **SYSTEM_KINDS[kind]}, key)
        s["data"] = s["data"] or r["ubm"]["data"]
        chk.ref(s["data"], r["data"], f"{key}.data", "data set")
        for k, v in s.items():
            if k not in ("kind", "data", "backend"):
                chk.positive(v, f"{key}.{k}")
        if s.get("backend") not in (None, "plda", "cosine"):
            chk.fail(f"{key}.backend", f"must be 'plda' or 'cosine'; got {_show(s['backend'])}")
        needs_labels = kind in ("isv", "jfa") or s.get("backend") == "plda"
        if needs_labels and r["data"][s["data"]]["utt2spk"] is None:
            chk.fail(f"{key}.data", f"{kind} training needs speaker labels: data set "
                                    f"{s['data']!r} has no utt2spk")
        if kind == "ivector":
            if "relevance_factor" in table:  # (kept in its parameters: the stamps stay valid)
                chk.fail(f"{key}.relevance_factor", "does not apply to an i-vector system (nothing "
                                                    "in it is MAP-adapted): remove it")
            _ivector_dims(chk, key, s, r["data"][s["data"]]["utt2spk"] is not None)
        r["systems"][name] = {k: v for k, v in s.items()
                              if not (k in OPTIONAL_SYSTEM_KEYS and v is None)}
    if not r["systems"]:
        chk.fail("systems", "no system defined")
    r["conditions"] = {}
    for name, table in chk.table(doc["conditions"], "conditions").items():
        key = f"conditions.{chk.name(name, 'conditions')}"
        c = chk.fields(table, SECTIONS["conditions"], key)
        chk.ref(c["data"], r["data"], f"{key}.data", "data set")
        c["enroll"] = chk.file(c["enroll"], f"{key}.enroll")
        c["trials"] = chk.file(c["trials"], f"{key}.trials")
        r["conditions"][name] = c
    if not r["conditions"]:
        chk.fail("conditions", "no condition defined")
    r["norm"] = r["calibration"] = None
    if "norm" in doc:
        n = r["norm"] = chk.fields(doc["norm"], SECTIONS["norm"], "norm")
        if n["method"] not in NORM_METHODS:
            chk.fail("norm.method", f"must be one of {', '.join(NORM_METHODS)}; got "
                                    f"{_show(n['method'])}")
        chk.ref(n["cohort"], r["data"], "norm.cohort", "data set")
        if r["data"][n["cohort"]]["utt2spk"] is None:
            chk.fail("norm.cohort", f"data set {n['cohort']!r} needs an utt2spk (one cohort "
                                    "model per speaker)")
        chk.positive(n["ddof"], "norm.ddof", strict=False)
        chk.positive(n["top_n"], "norm.top_n", low=n["ddof"])
    if "calibration" in doc:
        c = r["calibration"] = chk.fields(doc["calibration"], SECTIONS["calibration"],
                                          "calibration")
        chk.ref(c["train"], r["conditions"], "calibration.train", "condition")
        if not 0 < c["prior"] < 1:
            chk.fail("calibration.prior", f"must be in (0, 1); got {c['prior']!r}")
    e = r["evaluation"] = chk.fields(doc.get("evaluation", {}), SECTIONS["evaluation"],
                                     "evaluation")
    bad = next((p for p in e["p_target"] if not 0 < p < 1), None)
    if not e["p_target"] or bad is not None:
        chk.fail("evaluation.p_target", "must be a non-empty list of priors in (0, 1); got "
                                        f"{'an empty list' if bad is None else _show(bad)}")
    chk.positive(e["c_miss"], "evaluation.c_miss")
    chk.positive(e["c_fa"], "evaluation.c_fa")
    return r


def load_recipe(path) -> dict:
    """Read and validate a recipe file (TOML, through the standard library's tomllib).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    dict
        The checked recipe (see :func:`validate`).

    Raises
    ------
    RecipeError
        An unreadable or invalid recipe, naming the file and the key.
    """
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise RecipeError("reading a recipe needs Python >= 3.11 (tomllib) or the tomli "
                              "package") from None
    from ..io.small_files import read_bounded
    from ..io.untrusted import FeatureError

    path = Path(path)
    try:  # never blocks on a pipe, never reads a device, never more than a recipe can be
        doc = tomllib.loads(read_bounded(path, MAX_RECIPE_BYTES, "recipe file").decode("utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"no such recipe file: {os.fspath(path)!r}") from None
    except FeatureError:  # not a regular file (a pipe, a directory), too large: said as is
        raise
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{path}: not a valid TOML file ({exc})") from None
    except RecursionError:
        raise RecipeError(f"{path}: not a usable TOML file (arrays or tables nested too "
                          "deeply)") from None
    except ValueError:  # Python's limit on an integer's digits (4300), met in the parser
        raise RecipeError(f"{path}: not a usable TOML file (a number too long to read)") from None
    return validate(doc, path)
