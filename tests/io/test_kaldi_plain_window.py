"""Plain binary matrices of Kaldi archives and script files read from memory
(:mod:`emkit.io._kaldi_plain`): the same matrices, bit for bit, and the same errors as the general
reader (``WINDOW = 0`` sends every entry there), wherever the window's edge falls; an archive is
read a window at a time, not in a few dozen small reads per entry."""

import random

import numpy as np
import pytest
from feature_files import kaldi_binary, peak_bytes, size, write_ark, write_scp

from emkit.io import _kaldi_plain, kaldi
from emkit.io.errors import FeatureError

RNG = np.random.default_rng(7)


def _entries():
    """``[(key, token or None for text, matrix)]``: every plain type, a text matrix between."""
    return [("a", "FM", RNG.normal(size=(3, 4))), ("b", "DM", RNG.normal(size=(2, 5))),
            ("c", "FV", RNG.normal(size=(1, 7))), ("d", "DV", RNG.normal(size=(1, 3))),
            ("e", None, np.array([[1.5, -2.0], [3.0, 4.25]])), ("f", "FM", RNG.normal(size=(1, 1))),
            ("g" * 40, "DM", RNG.normal(size=(4, 2))), ("h", "FM", RNG.normal(size=(5, 3)))]


def _entry_bytes(key, token, M) -> bytes:
    if token is None:
        rows = "\n".join(" ".join(repr(float(v)) for v in row) for row in M)
        return f"{key}  [\n{rows} ]\n".encode()
    return key.encode() + b" \0B" + kaldi_binary(M if token[1] == "M" else M.ravel(), token)


def _write(path, entries, between=b"") -> dict:
    """Write the archive; return ``{key: offset of its object}``."""
    offsets, data = {}, b""
    for key, token, M in entries:
        data += between
        offsets[key] = len(data) + len(key) + (2 if token is None else 1)
        data += _entry_bytes(key, token, M)
    path.write_bytes(data)
    return offsets


def _expected(entries) -> dict:
    return {key: M.astype("<f4" if token in ("FM", "FV") else float).astype(float)
            for key, token, M in entries}


def _assert_same(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for key in want:
        assert got[key].dtype == np.float64 and got[key].flags.c_contiguous
        assert got[key].flags.writeable and got[key].shape == want[key].shape
        assert got[key].tobytes() == want[key].tobytes()


@pytest.mark.parametrize("between", [b"", b"\n", b" \t\r\n  "])
def test_any_window_edge_reads_the_same_matrices(tmp_path, monkeypatch, between):
    # window sizes from below a header to the whole file: its edge falls in every header, key and
    # run of values (a header split across it is read again from the entry's start)
    entries = _entries()
    _write(tmp_path / "m.ark", entries, between)
    want = _expected(entries)
    for window in [0, *range(8, 200), 1 << 20]:
        monkeypatch.setattr(_kaldi_plain, "WINDOW", window)
        _assert_same(kaldi.read_kaldi_ark(tmp_path / "m.ark"), want)


def test_a_script_file_in_order_or_shuffled_reads_the_same_matrices(tmp_path, monkeypatch):
    entries = [(f"u{k}", "FM" if k % 3 else "DV", RNG.normal(size=(1 + k % 4, 3)))
               for k in range(60)]
    entries = [(k, t, M if t == "FM" else M[:1]) for k, t, M in entries]
    offsets = _write(tmp_path / "m.ark", entries)
    want = _expected(entries)
    order = list(offsets)
    random.Random(0).shuffle(order)
    write_scp(tmp_path / "shuffled.scp", tmp_path / "m.ark", {k: offsets[k] for k in order})
    write_scp(tmp_path / "ordered.scp", tmp_path / "m.ark", offsets)
    for window in (0, 20, 1 << 20):
        monkeypatch.setattr(_kaldi_plain, "WINDOW", window)
        _assert_same(kaldi.read_kaldi_scp(tmp_path / "ordered.scp"), want)
        _assert_same(kaldi.read_kaldi_scp(tmp_path / "shuffled.scp"), {k: want[k] for k in order})


def _error(call, monkeypatch, window) -> str:
    monkeypatch.setattr(_kaldi_plain, "WINDOW", window)
    with pytest.raises(FeatureError) as caught:
        call()
    return str(caught.value)


def _good_archive() -> bytes:
    """The binary entries of :func:`_entries`: what each bad archive starts with."""
    return b"".join(_entry_bytes(k, t, M) for k, t, M in _entries() if t is not None)


def _bad_archives(tmp_path):
    """``{name: bytes}`` of archives the readers refuse: :func:`_good_archive`, then a bad entry
    (or a bad end)."""
    good = _good_archive()
    beyond = b"z \0BFM " + size(10**6) + size(10**3) + b"\0" * 64
    last = _entry_bytes("z", "FM", np.ones((4, 6)))
    nan = np.ones((2, 3))
    nan[1, 2] = np.nan
    cases = {f"truncated at {cut}": good + last[:cut] for cut in (1, 2, 4, 8, 14, 16, 20, 100)}
    cases.update({
        "declared size beyond the file": good + beyond,
        "negative size": good + b"z \0BFM " + size(-2) + size(3) + b"\0" * 64,
        "no rows": good + b"z \0BFM " + size(0) + size(3),
        "repeated key": good + _entry_bytes("a", "FM", np.ones((1, 2))),
        "NaN": good + _entry_bytes("z", "DM", nan),
        "infinity in a float32 vector": good + _entry_bytes("z", "FV", np.array([1, np.inf])),
        "key not printable": good + _entry_bytes("z\x1b", "FM", np.ones((1, 2))),
        "size byte not 4": good + b"z \0BFM \x05" + b"\0" * 40,
        "over max_utterance_bytes": good + _entry_bytes("z", "FM", np.ones((40, 40))),
    })
    return cases


def test_a_bad_entry_raises_the_general_readers_error_whatever_the_window(tmp_path, monkeypatch):
    for name, data in _bad_archives(tmp_path).items():
        (tmp_path / "bad.ark").write_bytes(data)

        def read():
            kaldi.read_kaldi_ark(tmp_path / "bad.ark", max_utterance_bytes=10_000)
        general = _error(read, monkeypatch, 0)
        for window in (24, 64, 120, 1 << 20):
            assert _error(read, monkeypatch, window) == general, (name, window)


def test_truncated_and_oversized_entries_name_the_bytes_declared_and_left(tmp_path):
    last = _entry_bytes("z", "FM", np.ones((4, 6)))  # 96 bytes of values after a 16-byte header
    (tmp_path / "cut.ark").write_bytes(_entry_bytes("a", "FM", np.ones((2, 2))) + last[:-10])
    with pytest.raises(FeatureError, match="utterance 'z': the file ends in the middle of the "
                       "matrix: its header declares 96 bytes but only 86 remain"):
        kaldi.read_kaldi_ark(tmp_path / "cut.ark")
    (tmp_path / "big.ark").write_bytes(b"z \0BFM " + size(10**6) + size(10**3) + b"\0" * 64)
    with pytest.raises(FeatureError, match="declares 4000000000 bytes but only 64 remain"):
        kaldi.read_kaldi_ark(tmp_path / "big.ark")


def test_a_float32_signalling_nan_is_the_files_error_not_a_cast_warning(tmp_path, monkeypatch):
    # its float64 cast warned "invalid value encountered in cast": under -W error (as pytest
    # runs) a bare RuntimeWarning naming no file, from the plain readers and the general one
    signalling = np.array([1.0, 0.0], "<f4")
    signalling.view("<u4")[1] = 0x7F800001
    with open(tmp_path / "s.ark", "wb") as f:
        f.write(b"a \0BFM " + size(1) + size(2) + signalling.tobytes())
    write_scp(tmp_path / "s.scp", tmp_path / "s.ark", {"a": 2})
    for window in (0, 1 << 20):
        monkeypatch.setattr(_kaldi_plain, "WINDOW", window)
        for read, path in ((kaldi.read_kaldi_ark, tmp_path / "s.ark"),
                           (kaldi.read_kaldi_scp, tmp_path / "s.scp")):
            with pytest.raises(FeatureError, match="utterance 'a'.* contains NaN or infinite") \
                    as caught:
                read(path)
            assert str(path) in str(caught.value)


def test_finite_values_whose_sum_overflows_are_read(tmp_path):
    # guards the finite check: a sum of these overflows (and warns: an error under pytest), an
    # exact check takes them
    M = np.array([[1e308, 1e308], [-1e308, 5.0]])
    write_ark(tmp_path / "m.ark", {"a": M, "b": M[::-1]}, token="DM")
    got = kaldi.read_kaldi_ark(tmp_path / "m.ark")
    assert got["a"].tobytes() == M.tobytes() and got["b"].tobytes() == M[::-1].copy().tobytes()


def test_a_script_file_range_ignores_a_nan_outside_it(tmp_path):
    # as the general reader does: only the values returned must be finite
    M = np.ones((3, 2))
    M[2, 1] = np.nan
    offsets = write_ark(tmp_path / "m.ark", {"a": M})
    write_scp(tmp_path / "m.scp", tmp_path / "m.ark", offsets, {"a": "[0:1]"})
    assert kaldi.read_kaldi_scp(tmp_path / "m.scp")["a"].tolist() == [[1.0, 1.0], [1.0, 1.0]]


class _CountingFile:
    """A file whose reads, seeks and tells are counted."""

    def __init__(self, f, calls):
        self._f, self._calls = f, calls

    def __getattr__(self, name):
        if name in ("read", "readinto", "seek", "tell", "peek", "readline"):
            self._calls.append(name)
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def test_an_archive_is_read_a_window_at_a_time(tmp_path, monkeypatch):
    # before: 6 reads, 7 tells and 3 seeks per entry (17,000 calls here); now one read per window
    write_ark(tmp_path / "m.ark", {f"utt{k:05d}": RNG.normal(size=(1, 20)) for k in range(1000)})
    calls, opened = [], kaldi.open_regular
    monkeypatch.setattr(kaldi, "open_regular",
                        lambda *a, **k: _CountingFile(opened(*a, **k), calls))
    assert len(kaldi.read_kaldi_ark(tmp_path / "m.ark")) == 1000
    assert len(calls) < 20, len(calls)


def test_a_small_archive_is_not_read_into_a_whole_window(tmp_path):
    write_ark(tmp_path / "m.ark", {"a": np.ones((2, 3))})
    assert peak_bytes(lambda: kaldi.read_kaldi_ark(tmp_path / "m.ark")) < 64 * 1024


@pytest.mark.parametrize("bad_at", [0, 1, 299, 998])
def test_a_nan_among_entries_checked_together_is_the_error_in_file_order(tmp_path, monkeypatch,
                                                                            bad_at):
    # values are checked finite many entries at a time: the NaN is still the error, before a
    # repeated key that comes after it in the same batch
    entries = {f"u{k:04d}": RNG.normal(size=(2, 8)) for k in range(999)}
    entries[f"u{bad_at:04d}"][1, 3] = np.nan
    write_ark(tmp_path / "m.ark", entries)
    with open(tmp_path / "m.ark", "ab") as f:
        f.write(_entry_bytes("u0000", "FM", np.ones((1, 2))))

    def read():
        kaldi.read_kaldi_ark(tmp_path / "m.ark")
    general = _error(read, monkeypatch, 0)
    assert f"utterance 'u{bad_at:04d}' contains NaN or infinite values" in general
    for window in (300, 4096, 1 << 20):
        assert _error(read, monkeypatch, window) == general


#: errors of an archive's keys, not of its objects (the script file names the object "z")
_ARCHIVE_ERRORS = ("repeated key", "key not printable")


def test_a_bad_object_in_a_script_file_raises_the_general_readers_error(tmp_path, monkeypatch):
    # the script file points to the bad entry's object (after the good entries): where the entry
    # was cut before its object, to the byte after its key, the end of the file or past it
    checked = []
    after_good = len(_good_archive())
    for name, data in _bad_archives(tmp_path).items():
        if name in _ARCHIVE_ERRORS:
            continue
        (tmp_path / "bad.ark").write_bytes(data)
        found = data.find(b"\0B", after_good)
        offset = found if found >= 0 else after_good + 2
        (tmp_path / "bad.scp").write_text(f"z {tmp_path / 'bad.ark'}:{offset}\n")

        def read():
            kaldi.read_kaldi_scp(tmp_path / "bad.scp", max_utterance_bytes=10_000)
        general = _error(read, monkeypatch, 0)
        assert _error(read, monkeypatch, 1 << 20) == general, name
        checked.append(name)
    assert len(checked) == len(_bad_archives(tmp_path)) - len(_ARCHIVE_ERRORS) == 15
