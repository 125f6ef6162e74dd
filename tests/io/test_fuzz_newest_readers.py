"""Property-based fuzzing (hypothesis) of the newest readers: the block readers of score files
and keys (:mod:`emkit.io.score_files`, :mod:`emkit.io.key_files`), the line count of Kaldi script
files (``kaldi._line_count``), the RIFF/WAVE header reader (``audio._wav_header.read_header``) and
HDF5 files of odd structure read through the checked descriptor (features, the lazy row reader,
model datasets).  Recipe stamps are fuzzed in ``tests/experiment/test_recipe_stamp_files.py``;
the byte-mutation campaigns of the older readers are ``test_fuzz_*.py`` next to this file.

The text files are built from adversarial pieces: ids of 10^5 characters, numbers such as
``1e999``, ``nan``, ``-0``, ``0x10``, ``1_000``, ``١٢٣``, NUL bytes, bytes that are not UTF-8, CR
or CRLF line ends, a byte-order mark, lines of 10^4 columns or longer than the line limit.  Each
read runs under :func:`mutations.guarded`: a result that is valid, or the reader's documented
error naming the file, with at most a short excerpt of the file in the message; within a time
limit; the peak of the allocations tracemalloc sees at most a small multiple of the file's size
(plus the fixed read buffers).  Examples are derandomised (the suite is reproducible).
"""

import io
import os
import re
import struct
import warnings

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from emkit.io.errors import InvalidFileError
from emkit.io.lists import FeatureError, labels_from_key, read_key, read_scores
from mutations import guarded

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))

#: what a read may allocate per byte of the file, besides mutations.SLACK (read buffers)
RATIO = 16

ODD_TOKENS = ["m1", "p1", "m2", "p2", "1.5", "-0", "-0.0", "1e999", "-1e999", "nan", "inf",
              "0x10", "1_000", "\u0661\u0662\u0663", "1e-400", "target", "nontarget", "TARGET",
              "#", "#m", "a\x00b", "é", "\u2028", "\x1c", "", "1e", "--1", "."]
TOKEN = st.one_of(st.sampled_from(ODD_TOKENS + ["x" * 100_000, "9" * 5000]), st.text(max_size=5))
SEPARATOR = st.sampled_from([" ", " ", "\t", "  ", "\x0b", "\x1f"])
ENDING = st.sampled_from(["\n", "\n", "\r\n", "\r"])


#: a plausible line of each kind of file (k: the line's number)
TEMPLATES = {"scores": lambda k: [f"m{k % 3}", f"p{k}", f"{k / 7 - 1!r}"],
             "labelled scores": lambda k: [f"m{k % 3}", f"p{k}", f"{k / 7 - 1!r}", "target"],
             "key": lambda k: [f"m{k % 3}", f"p{k}", ["target", "nontarget"][k % 2]]}


@st.composite
def text_file(draw, kind):
    """A list file of a kind: mostly plausible lines, some with an odd field, some odd lines and
    bytes."""
    lines = []
    for k in range(draw(st.integers(0, 12))):
        shape = draw(st.integers(0, 9))
        if shape < 6:  # a plausible line, perhaps with one odd field
            fields = TEMPLATES[kind](k)
            if shape < 3:
                fields[draw(st.integers(0, len(fields) - 1))] = draw(TOKEN)
        elif shape < 8:
            fields = draw(st.lists(TOKEN, max_size=6))
        else:
            fields = ["a"] * draw(st.sampled_from([2, 5, 10_000]))
        lines.append(draw(SEPARATOR).join(fields))
    data = draw(ENDING).join(lines).encode("utf-8", "surrogatepass")
    if lines and draw(st.booleans()):
        data += b"\n"
    edit = draw(st.integers(0, 11))
    if edit == 0:
        data = b"\xef\xbb\xbf" + data
    elif edit == 1 and data:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\x00", b"\xed\xa0\x80"])) + \
            data[at:]
    elif edit == 2 and data:
        data = data[:draw(st.integers(0, len(data)))]  # truncated
    elif edit == 3:
        data += b"m9 p9 " + b"7" * (2**20 + 10) + b"\n"  # a line over the limit (1 MiB)
    return data


def _check_scores(result) -> None:
    trials, scores = result
    n = len(scores)
    assert scores.dtype == np.float64 and scores.shape == (n,) and np.isfinite(scores).all()
    assert len(trials.models) == len(trials.probes) == n > 0
    assert all(isinstance(m, str) and m and not m.startswith("#") for m in trials.models)
    assert len(set(zip(trials.models, trials.probes))) == n  # no pair twice
    if trials.labels is not None:
        assert trials.labels.dtype == bool and trials.labels.shape == (n,)


@SETTINGS
@given(data=st.one_of(text_file("scores"), text_file("labelled scores")))
def test_fuzz_score_files(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("scores") / "scores.txt"
    path.write_bytes(data)
    with guarded() as read:
        result = read(read_scores, path, data, (FeatureError, FileNotFoundError), ratio=RATIO)
    event("refused" if result is None else "read")
    if result is not None:
        _check_scores(result)
    assert _outcome(path, 7) == _outcome(path, 1 << 20)  # where blocks end changes nothing


def _outcome(path, block: int):
    """read_scores' trials and scores, or its message, reading ``block`` bytes at a time."""
    from emkit.io import score_files

    saved, score_files._BLOCK = score_files._BLOCK, block
    try:
        trials, scores = read_scores(path)
    except FeatureError as exc:
        return str(exc)
    finally:
        score_files._BLOCK = saved
    labels = None if trials.labels is None else trials.labels.tolist()
    return trials.models, trials.probes, scores.tolist(), labels


@settings(SETTINGS, max_examples=25)  # (each valid key also labels two score files)
@given(data=text_file("key"))
def test_fuzz_keys(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("key")
    path = folder / "key.txt"
    path.write_bytes(data)
    with guarded() as read:
        key = read(read_key, path, data, (FeatureError, FileNotFoundError), ratio=RATIO)
    event("refused" if key is None else "read")
    if key is None:
        return
    models = list(key.model_ids)
    probes = list(key.probe_ids)
    pairs = list(zip(np.asarray(key.models).tolist(), np.asarray(key.probes).tolist()))
    assert len(key.labels) == len(pairs) > 0 and len(set(pairs)) == len(pairs)
    # a score file of the key's first trial and one it lacks: labelled, or refused naming both
    scores = folder / "scores.txt"
    first = f"{models[pairs[0][0]]} {probes[pairs[0][1]]}"
    for text, known in ((f"{first} 0.5\n", True), (f"{first} 0.5\nzz-absent q 1\n", False)):
        scores.write_text(text, encoding="utf-8")
        trials, _ = read_scores(scores)
        if known:
            assert labels_from_key(scores, trials, key).tolist() == [bool(key.labels[0])]
        else:
            with pytest.raises(FeatureError, match=r"scores.txt: trial 'zz-absent q' is not in "
                                                   r"the key .*key.txt \(1 trials missing\)"):
                labels_from_key(scores, trials, key)


@SETTINGS
@given(data=st.one_of(st.binary(max_size=300),
                      st.lists(st.sampled_from([b"a", b"\n", b"\r", b"\r\n", b"\x00", b"\xff",
                                                b"u1 f.ark:3\n"]), max_size=60).map(b"".join)),
       block=st.sampled_from([1, 2, 7, 1 << 16]))
def test_fuzz_script_file_line_counts(tmp_path_factory, monkeypatch, data, block):
    from emkit.io import kaldi

    path = tmp_path_factory.mktemp("scp") / "f.scp"
    path.write_bytes(data)
    original = kaldi.open_regular

    class SmallReads:  # the count must not depend on where the blocks end
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            self.f.__enter__()
            return self

        def __exit__(self, *exc):
            return self.f.__exit__(*exc)

        def read(self, n):
            return self.f.read(min(n, block))

    monkeypatch.setattr(kaldi, "open_regular", lambda p: SmallReads(original(p)))
    expected = len(data.split(b"\n")) - (data.endswith(b"\n") or not data)
    assert kaldi._line_count(path) == expected


SCP_KEYS = ["u1", "u2", "u1", "u2", "k" * 100_000, "#", "#u", "\x1b[2J", "é"]
SCP_TARGETS = ["a.ark"] * 8 + ["missing.ark", "x" * 5000 + ".ark", "d/" * 2000 + "a.ark",
               "\x1b[2Ja.ark", "a\x00.ark", "/dev/zero", "notes.txt", "a.ark\r", "sox a.wav - |",
               "."]
SCP_SUFFIXES = [":3"] * 8 + ["", ":0", ":40", ":" + "9" * 3000, ":-1", ":0x10", ":3[0:1]",
                ":3[1:0]", ":3[0:1,0:9]", ":3[" + "9" * 3000 + ":1]", "[0:1", ":1_0"]


@st.composite
def script_file(draw):
    lines = [f"{draw(st.sampled_from(SCP_KEYS))}{draw(st.sampled_from([' ', '  ', chr(9)]))}"
             f"{draw(st.sampled_from(SCP_TARGETS))}{draw(st.sampled_from(SCP_SUFFIXES))}"
             for _ in range(draw(st.integers(1, 4)))]
    return draw(ENDING).join(lines).encode("utf-8") + draw(st.sampled_from([b"", b"\n"]))


@SETTINGS
@given(scp=script_file())
def test_fuzz_kaldi_script_file_lines(tmp_path_factory, monkeypatch, scp):
    from emkit.io.kaldi import read_kaldi_scp
    from feature_files import kaldi_binary

    folder = tmp_path_factory.mktemp("scp")
    monkeypatch.chdir(folder)
    ark = b"u1 \0B" + kaldi_binary(np.ones((4, 3)), "FM") + b"u2 \0B" + \
        kaldi_binary(np.arange(6.0).reshape(2, 3), "DM")
    (folder / "a.ark").write_bytes(ark)
    (folder / "notes.txt").write_text("not an archive\n")
    (folder / "f.scp").write_bytes(scp)
    with guarded() as read:
        result = read(read_kaldi_scp, folder / "f.scp", scp + ark, (FeatureError, ),
                      ratio=RATIO)
    event("refused" if result is None else "read")
    for matrix in (result or {}).values():
        assert matrix.dtype == np.float64 and matrix.ndim == 2 and np.isfinite(matrix).all()


def _wav(fmt_chunk: bytes, data: bytes, extra: bytes = b"") -> bytes:
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt_chunk)) + fmt_chunk + extra + \
        b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


PCM = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
WAV_SEEDS = [_wav(PCM, bytes(64)),
             _wav(PCM, bytes(63), b"LIST" + struct.pack("<I", 5) + b"abcde\0"),
             _wav(struct.pack("<HHIIHHHHIH14s", 0xFFFE, 2, 8000, 32000, 4, 16, 22, 16, 3, 1,
                              bytes.fromhex("000010008000" "00aa00389b71")), bytes(16)),
             _wav(struct.pack("<HHIIHHHH", 0x11, 1, 8000, 4055, 256, 4, 2, 505), bytes(256))]
FIELD = st.sampled_from([0, 1, 2, 0xFFFF, 2**31 - 1, 2**31, 2**32 - 1, 40, 41])


@st.composite
def wav_bytes(draw):
    data = bytearray(draw(st.sampled_from(WAV_SEEDS)))
    for _ in range(draw(st.integers(0, 3))):
        op, at = draw(st.integers(0, 3)), draw(st.integers(0, len(data)))
        if op == 0:  # a 32-bit size or field set to an extreme value
            data[at:at + 4] = struct.pack("<I", draw(FIELD))
        elif op == 1:
            del data[at:]
        elif op == 2:
            data[at:at] = draw(st.sampled_from([b"fmt ", b"data", b"RIFF", b"\0" * 8]))
        else:
            data[at:at + 1] = draw(st.binary(max_size=2))
    return bytes(data) if draw(st.integers(0, 5)) else draw(st.binary(max_size=80))


@SETTINGS
@given(data=wav_bytes())
def test_fuzz_wav_headers(data):
    from emkit.audio._wav_header import read_header, warn_truncated, wav_format

    reads = []

    class Counted(io.BytesIO):  # (fileno: warn_truncated's size comes from fstat in real use)
        def read(self, n=-1):
            assert n is not None and 0 <= n <= 40, n  # bounded reads only
            reads.append(n)
            return super().read(n)

        def fileno(self):
            raise OSError("no descriptor")

    header = read_header(Counted(data))  # (an OSError from fstat: None, not raised)
    assert len(reads) <= 2 * 1000 + 2
    with open_fake(data) as f:
        header = read_header(f)
    if header is None:
        assert wav_format(None) is None
        return
    fmt, size, held = header
    assert isinstance(fmt, bytes) and len(fmt) <= 40
    assert size is None or 0 <= size < 2**32
    assert 0 <= held <= len(data)
    described = wav_format(header)
    assert described is None or (described.startswith("a WAV") and len(described) < 120)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            warn_truncated("case.wav", 0, header)
        except UserWarning as warning:
            assert "case.wav': truncated WAV" in str(warning) and len(str(warning)) < 250


class open_fake:
    """``data`` as a real file (read_header takes the size after the data chunk from fstat)."""

    def __init__(self, data: bytes):
        import tempfile

        self.f = tempfile.TemporaryFile()
        self.f.write(data)
        self.f.seek(0)

    def __enter__(self):
        return self.f

    def __exit__(self, *exc):
        self.f.close()


# -- HDF5 -----------------------------------------------------------------------------------------
DTYPES = ["<f8", ">f4", "<i2", "<u8", "<f2", "compound", "vlen", "string", "enum", "bool"]
SHAPES = [(4, 3), (0, 3), (4, 0), (4,), (), (2, 2, 2), "huge", "huge-gzip", "empty"]
LINKS = [None, "soft", "external", "dangling", "hard-loop", "model-attribute"]


def _dataset(f, name, dtype, shape, fill):
    if shape == "huge":  # declared 8 TB, nothing stored
        return f.create_dataset(name, shape=(10**9, 1000), chunks=(16, 16), dtype="<f8")
    if shape == "huge-gzip":
        return f.create_dataset(name, shape=(10**6, 1000), chunks=(1000, 100), dtype="<f8",
                                compression="gzip")
    if shape == "empty":
        return f.create_dataset(name, data=h5py.Empty("<f8"))
    if dtype == "compound":
        return f.create_dataset(name, shape, dtype=[("a", "<f8"), ("b", "<i4")])
    if dtype == "vlen":
        return f.create_dataset(name, shape, dtype=h5py.vlen_dtype(np.float64))
    if dtype == "string":
        return f.create_dataset(name, shape, dtype=h5py.string_dtype())
    if dtype == "enum":
        return f.create_dataset(name, data=np.zeros(shape, "i1"),
                                dtype=h5py.enum_dtype({"a": 0, "b": 1}, basetype="i1"))
    if dtype == "bool":
        return f.create_dataset(name, data=np.zeros(shape, bool))
    values = np.full(shape, fill)
    with np.errstate(over="ignore", invalid="ignore"):
        return f.create_dataset(name, data=values.astype(dtype))


@st.composite
def hdf5_file(draw, folder):
    path = folder / "case.h5"
    other = folder / "other.h5"
    with h5py.File(other, "w") as f:
        f["u1"] = np.ones((4, 3))
    name = draw(st.sampled_from(["u1", "u1", "array", "g/u1", "n" * 100_000]))
    link = draw(st.sampled_from(LINKS))
    with h5py.File(path, "w") as f:
        _dataset(f, name, draw(st.sampled_from(DTYPES)), draw(st.sampled_from(SHAPES)),
                 draw(st.sampled_from([1.5, -0.0, np.nan, np.inf, 1e300, 70000.0])))
        target = "u1" if name != "u1" else "u2"
        if link == "soft":
            f[target] = h5py.SoftLink("/" + name)
        elif link == "external":
            f[target] = h5py.ExternalLink(str(other), "/u1")
        elif link == "dangling":
            f[target] = h5py.SoftLink("/nowhere")
        elif link == "hard-loop":
            f.require_group("loop")["back"] = f["/"]
        elif link == "model-attribute":
            f.attrs["emkit_class"] = "x" * draw(st.sampled_from([3, 10_000]))
    return path


def _read_model_dataset(path):
    from emkit.io.h5 import open_for_reading, read_array

    with open_for_reading(path, "GMMMachine") as f:
        return read_array(f, "u1", shape=(None, None))


def _read_rows(path):
    from emkit.io.arrays import HDF5RowReader

    reader = HDF5RowReader.open(path, "u1")
    return reader[0:reader.shape[0]]


@SETTINGS
@given(data=st.data(), reader=st.sampled_from(["features", "rows", "model"]))
def test_fuzz_hdf5_structures(tmp_path_factory, data, reader):
    from emkit.features import read_features

    path = data.draw(hdf5_file(tmp_path_factory.mktemp("h5")))
    content = path.read_bytes()
    load = {"features": read_features, "rows": _read_rows, "model": _read_model_dataset}[reader]
    allowed = (InvalidFileError, KeyError) if reader == "rows" else InvalidFileError
    with guarded() as read:  # (the lazy reader: a KeyError naming the file for no dataset)
        result = read(load, path, content, allowed, ratio=RATIO)
    event(f"{reader}: {'refused' if result is None else 'read'}")
    if result is None:
        return
    arrays = result.values() if isinstance(result, dict) else [result]
    for array in arrays:
        assert array.ndim == 2 and array.dtype.kind in "fiu"
        assert array.size > 0 or reader == "model"  # (a model's reader checks its sizes)
        if reader != "rows":  # (the row reader leaves the values to the caller)
            assert array.dtype == np.float64 and np.isfinite(array).all()


def _gmm_model(path):
    from emkit import GMMMachine

    return GMMMachine.from_hdf5(path)


def _wav_audio(path):
    from emkit.audio import read_audio

    return read_audio(path, sample_rate=8000)


@pytest.mark.parametrize("load, name", [
    (read_scores, "s.txt"), (read_key, "k.txt"), ("line count", "f.scp"),
    ("features", "f.h5"), (_gmm_model, "ubm.h5"), (_wav_audio, "a.wav")])
@pytest.mark.parametrize("make", [os.mkfifo, lambda p: os.symlink("/dev/zero", p)],
                         ids=["named pipe", "link to /dev/zero"])
def test_the_newest_readers_refuse_pipes_and_devices_at_once(tmp_path, no_hang, load, name, make):
    # a guard: each reader opens through open_checked (non-blocking, fstat, regular files only)
    from emkit.features import read_features
    from emkit.io import kaldi

    if load is _wav_audio:
        pytest.importorskip("soundfile")
    load = {"line count": kaldi._line_count, "features": read_features}.get(load, load)
    path = tmp_path / name
    make(path)
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*not a regular file"):
        load(path)
