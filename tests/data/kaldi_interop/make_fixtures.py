"""Write the Kaldi interoperability fixtures with kaldiio, an implementation independent of emkit.

kaldiio is never a dependency of emkit: it is the oracle of ``tests/io/test_kaldi_interop.py``.
This script is standalone; to rerun it (from the repository root)::

    python3 -m venv /tmp/kaldienv && /tmp/kaldienv/bin/pip install kaldiio numpy
    EMKIT_PYTHON=/work/main/.venv/bin/python /tmp/kaldienv/bin/python \\
        tests/data/kaldi_interop/make_fixtures.py

It rewrites everything in this directory except itself:

* ``*.ark`` / ``*.scp`` written by kaldiio: binary float and double matrices and vectors,
  text matrices and vectors, compressed matrices of every ``compression_method`` (1..7: CM,
  CM2, CM3), empty matrices, single matrices without a key (``copy-matrix`` output) named by
  an scp without offsets, an scp with byte offsets and one with row/column ranges
  (``[a:b]``, ``[a:b,c:d]``, ``[:,c:d]``, ``[a:b,:]``, a row end past the last row within
  Kaldi's tolerance of 3), several utterances per archive, keys with odd but legal characters;
* ``expected.npz``: what kaldiio reads back from each (``<fixture>/<index>``, the keys in
  ``manifest.json``, in file order);
* ``emkit_written/``: an archive, its scp and an utt2num_frames written by emkit, and vectors
  (i-vectors) as float32 ``FV`` (``ivector.ark``/``.scp``) and float64 ``DV``
  (``ivector_double.ark``/``.scp``) (run in a subprocess with ``EMKIT_PYTHON`` and this
  checkout's ``src``), read back here with kaldiio and compared with kaldiio's own bytes;
  the result and the files' SHA-256 are recorded in ``manifest.json`` (the test checks that
  emkit still writes these very bytes).
"""

import hashlib
import io
import json
import os
import subprocess
import sys

import kaldiio
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
ODD_KEYS = ["spk-1_utt.2", "a:b", "x[1]", "utt#3", "caf\u00e9-\u00fc", "semi;colon", "q'u\"ote",
            "comma,1", "(paren)", "12345"]


def _matrix(rng, rows, cols, dtype=np.float32, scale=10.0):
    return (rng.standard_normal((rows, cols)) * scale).astype(dtype)


def _arrays(rng):
    """{fixture: {key: array}} of the archives written with kaldiio's save_ark."""
    feats = {f"utt{i}": _matrix(rng, rows, 13) for i, rows in enumerate([5, 1, 40])}
    compressed = {}
    for method in range(1, 8):
        if method == 4:    # two-byte signed integers
            data = rng.integers(-32768, 32768, size=(12, 6)).astype(np.float32)
        elif method == 6:  # one-byte unsigned integers
            data = rng.integers(0, 256, size=(12, 6)).astype(np.float32)
        elif method == 7:  # values in [0, 1]
            data = rng.random((12, 6)).astype(np.float32)
        else:
            data = _matrix(rng, 300 if method == 2 else 12, 6)
        compressed[f"method{method}"] = (data, method)
    return {
        "float_matrices": feats,
        "double_matrices": {f"utt{i}": _matrix(rng, rows, 4, np.float64) for i, rows in
                            enumerate([3, 7])},
        "float_vectors": {f"ivec{i}": rng.standard_normal(8).astype(np.float32) for i in range(3)},
        "double_vectors": {f"ivec{i}": rng.standard_normal(8) for i in range(3)},
        "odd_keys": {key: _matrix(rng, 2, 3) for key in ODD_KEYS},
        "empty_matrix": {"empty": np.zeros((0, 3), dtype=np.float32)},
    }, compressed


def _save_all(rng):
    plain, compressed = _arrays(rng)
    written = {}
    for name, arrays in plain.items():
        kaldiio.save_ark(f"{name}.ark", arrays, scp=f"{name}.scp")
        written[name] = [f"{name}.ark", f"{name}.scp"]
    text = {"mat": _matrix(rng, 3, 4, np.float64), "vec": rng.standard_normal(5),
            "int_like": np.arange(6, dtype=np.float64).reshape(2, 3)}
    kaldiio.save_ark("text.ark", text, scp="text.scp", text=True)
    written["text"] = ["text.ark", "text.scp"]
    for key, (data, method) in compressed.items():
        kaldiio.save_ark(f"compressed_{key}.ark", {key: data}, scp=f"compressed_{key}.scp",
                         compression_method=method)
        written[f"compressed_{key}"] = [f"compressed_{key}.ark", f"compressed_{key}.scp"]
    # all compressed methods in one archive, read through one scp (several per archive)
    for i, (key, (data, method)) in enumerate(compressed.items()):
        kaldiio.save_ark("compressed_all.ark", {key: data}, scp="compressed_all.scp",
                         append=i > 0, compression_method=method)
    written["compressed_all"] = ["compressed_all.ark", "compressed_all.scp"]
    # single matrices without a key (copy-matrix's output), named by an scp without offsets
    kaldiio.save_mat("bare.mat", _matrix(rng, 4, 3))
    kaldiio.save_mat("bare_cm.mat", _matrix(rng, 20, 3), compression_method=2)
    with open("bare.scp", "w", encoding="utf-8") as f:
        f.write("plain bare.mat\ncompressed bare_cm.mat\n")
    written["bare"] = ["bare.mat", "bare_cm.mat", "bare.scp"]
    return written


def _ranges():
    """An scp of ranges into float_matrices.ark (utt2: 40 x 13) and compressed_method2.ark."""
    offsets = {}
    for scp in ("float_matrices.scp", "compressed_method2.scp"):
        for line in open(scp, encoding="utf-8"):
            key, target = line.split(maxsplit=1)
            offsets[key] = target.strip()
    feats, cm = offsets["utt2"], offsets["method2"]
    lines = [f"rows {feats}[3:9]", f"block {feats}[0:4,2:5]", f"cols {feats}[:,10:12]",
             f"rows_all_cols {feats}[5:6,:]", f"one_row {feats}[39:39]",
             f"past_end {feats}[30:41]", f"cm_rows {cm}[100:120]", f"cm_block {cm}[0:299,1:3]"]
    with open("ranges.scp", "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    return ["ranges.scp"]


def _read_back(written):
    """{fixture: [(key, array)]} of every scp, read by kaldiio (ranges applied)."""
    return {name: list(kaldiio.load_scp(files[-1]).items()) for name, files in written.items()}


_EMKIT_SNIPPET = r"""
import numpy as np
from emkit.audio import write_kaldi_ark, write_utt2num_frames
rng = np.random.default_rng(20261208)
items = [(k, (rng.standard_normal((n, 5)) * 3).astype(np.float32))
         for k, n in [("spk1-utt1", 4), ("spk1-utt2", 1), ("caf\u00e9:2", 7)]]
write_kaldi_ark(items, "feats.ark")
np.savez("inputs.npz", **{str(i): m for i, (_, m) in enumerate(items)})
with open("utt2num_frames", "w", encoding="utf-8", newline="\n") as f:
    write_utt2num_frames(f, {k: m.shape for k, m in items})
from emkit.io.kaldi_vectors import write_kaldi_vectors
for name, dtype in [("ivector", np.float32), ("ivector_double", np.float64)]:
    vectors = {k: (rng.standard_normal(6) * 2).astype(dtype)
               for k in ["spk1-utt1", "spk2-utt1", "caf\u00e9:3"]}
    write_kaldi_vectors(vectors, name + ".ark", name + ".scp")
    np.savez(name + "_inputs.npz", **{str(i): v for i, v in enumerate(vectors.values())})
"""


def _emkit_written():
    """Have emkit write an archive, its scp and utt2num_frames; check them with kaldiio."""
    directory = os.path.join(HERE, "emkit_written")
    os.makedirs(directory, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "src"))
    subprocess.run([os.environ.get("EMKIT_PYTHON", "/work/main/.venv/bin/python"), "-c",
                    _EMKIT_SNIPPET], cwd=directory, env=env, check=True)
    os.chdir(directory)
    # the scp names the archive by its absolute path: kept relative so that the fixture moves
    scp = open("feats.scp", encoding="utf-8").read().replace(os.path.abspath("feats.ark"),
                                                               "feats.ark")
    open("feats.scp", "w", encoding="utf-8", newline="\n").write(scp)
    inputs = np.load("inputs.npz")
    keys = [line.split()[0] for line in scp.splitlines()]
    by_ark, by_scp = list(kaldiio.load_ark("feats.ark")), kaldiio.load_scp("feats.scp")
    checks = {
        "ark_keys_in_order": [k for k, _ in by_ark] == keys,
        "ark_arrays_equal": all(np.array_equal(a, inputs[str(i)]) for i, (_, a) in
                                enumerate(by_ark)),
        "ark_dtype_float32": all(a.dtype == np.float32 for _, a in by_ark),
        "scp_arrays_equal": all(np.array_equal(by_scp[k], inputs[str(i)])
                                for i, k in enumerate(keys)),
        "utt2num_frames_matches": [line.split() for line in open("utt2num_frames")] ==
                                  [[k, str(inputs[str(i)].shape[0])] for i, k in enumerate(keys)],
        # kaldiio rewrites the same arrays: the same bytes as emkit's (Kaldi's FM layout)
        "ark_bytes_equal_kaldiio_save_ark": _kaldiio_bytes(keys, inputs) == open("feats.ark",
                                                                                 "rb").read(),
    }
    os.remove("inputs.npz")
    for name, dtype in [("ivector", np.float32), ("ivector_double", np.float64)]:
        checks.update(_vector_checks(name, dtype))
    files = {name: hashlib.sha256(open(name, "rb").read()).hexdigest()
             for name in ("feats.ark", "feats.scp", "utt2num_frames", "ivector.ark",
                          "ivector.scp", "ivector_double.ark", "ivector_double.scp")}
    os.chdir(HERE)
    return {"checks": checks, "sha256": files}


def _vector_checks(name, dtype):
    """Check emkit's vectors NAME.ark / NAME.scp (FV or DV) with kaldiio, as _emkit_written
    checks its matrices; the scp is made relative as feats.scp is."""
    scp = open(f"{name}.scp", encoding="utf-8").read().replace(os.path.abspath(f"{name}.ark"),
                                                                f"{name}.ark")
    open(f"{name}.scp", "w", encoding="utf-8", newline="\n").write(scp)
    inputs = np.load(f"{name}_inputs.npz")
    keys = [line.split()[0] for line in scp.splitlines()]
    by_ark, by_scp = list(kaldiio.load_ark(f"{name}.ark")), kaldiio.load_scp(f"{name}.scp")
    checks = {
        f"{name}_ark_keys_in_order": [k for k, _ in by_ark] == keys,
        f"{name}_ark_vectors_equal": all(np.array_equal(a, inputs[str(i)]) and a.ndim == 1
                                         for i, (_, a) in enumerate(by_ark)),
        f"{name}_ark_dtype_{np.dtype(dtype).name}": all(a.dtype == dtype for _, a in by_ark),
        f"{name}_scp_vectors_equal": all(np.array_equal(by_scp[k], inputs[str(i)])
                                         for i, k in enumerate(keys)),
        f"{name}_ark_bytes_equal_kaldiio_save_ark": _kaldiio_bytes(keys, inputs) ==
                                                    open(f"{name}.ark", "rb").read(),
    }
    os.remove(f"{name}_inputs.npz")
    return checks


def _kaldiio_bytes(keys, inputs):
    """The archive kaldiio writes of the same arrays (float32 or float64, matrices or vectors)."""
    buffer = io.BytesIO()
    kaldiio.save_ark(buffer, {k: inputs[str(i)] for i, k in enumerate(keys)})
    return buffer.getvalue()


def main():
    os.chdir(HERE)
    rng = np.random.default_rng(20261208)
    written = _save_all(rng)
    written["ranges"] = _ranges()
    expected, manifest = {}, {"kaldiio": kaldiio.__version__, "fixtures": {}}
    for name, entries in _read_back(written).items():
        manifest["fixtures"][name] = {"files": written[name], "keys": [k for k, _ in entries]}
        for i, (_, array) in enumerate(entries):
            expected[f"{name}/{i}"] = np.asarray(array)
    np.savez("expected.npz", **expected)
    manifest["emkit_written"] = _emkit_written()
    with open("manifest.json", "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=True)
        f.write("\n")
    if not all(manifest["emkit_written"]["checks"].values()):
        sys.exit(f"kaldiio does not read emkit's output: {manifest['emkit_written']['checks']}")


if __name__ == "__main__":
    main()
