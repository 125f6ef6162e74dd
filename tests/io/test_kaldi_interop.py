"""emkit's Kaldi reader and writer against kaldiio, an independent implementation (the oracle).

The fixtures in ``tests/data/kaldi_interop`` were written by kaldiio (see ``make_fixtures.py``
there, which also records what kaldiio reads back from each, in ``expected.npz``): emkit must
read them to the same arrays.  In the other direction, ``emkit_written/`` holds an archive, its
scp and an utt2num_frames written by emkit, and vector archives (i-vectors, FV and DV) with their
scp, that the script read back with kaldiio (the result is in ``manifest.json``); emkit must
still write those very bytes.
"""

import hashlib
import json
import os
import struct

import numpy as np
import pytest
from _parity import DATA

from emkit.audio import write_kaldi_ark, write_utt2num_frames
from emkit.features import FeatureError, read_kaldi_ark, read_kaldi_scp

FIXTURES = DATA / "kaldi_interop"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text(encoding="utf-8"))
EXPECTED = dict(np.load(FIXTURES / "expected.npz"))
F32 = np.finfo(np.float32)


def _expected(name):
    """{key: what kaldiio read} of a fixture, in its order, vectors as one row (as emkit)."""
    keys = MANIFEST["fixtures"][name]["keys"]
    return {key: np.atleast_2d(EXPECTED[f"{name}/{i}"]) for i, key in enumerate(keys)}


def _compressed_tolerance(expected):
    """emkit decodes a compressed matrix with Kaldi's float32 formulas, kaldiio with its own
    float32 arithmetic in another order: the same bytes give values a few float32 rounding steps
    apart at the matrix's magnitude, 8 of them allowed.  That is far finer than the format's
    quantisation (range / 65535 at best, CM2), so a wrong code, table or column order fails."""
    return 8 * F32.eps * max(1.0, float(np.abs(expected).max()))


def _assert_read_as(out, expected, *, compressed=False, text=False):
    assert list(out) == list(expected)
    for key, want in expected.items():
        got = out[key]
        assert got.dtype == np.float64 and got.shape == want.shape, key
        if text:  # kaldiio parses text into float32 (as Kaldi's float tools); emkit keeps float64
            assert want.dtype == np.float32
            np.testing.assert_array_equal(got.astype(np.float32), want, err_msg=key)
        elif compressed:
            np.testing.assert_allclose(got, want, rtol=0, atol=_compressed_tolerance(want),
                                       err_msg=key)
        else:  # binary float/double and text: the very numbers
            np.testing.assert_array_equal(got, want.astype(np.float64), err_msg=key)


READABLE = [name for name in MANIFEST["fixtures"]
            if name not in ("empty_matrix", "ranges", "bare")]


@pytest.fixture(autouse=True)
def _in_fixtures(monkeypatch):
    monkeypatch.chdir(FIXTURES)  # scp paths are relative, as in a Kaldi data directory


@pytest.mark.parametrize("name", READABLE)
def test_every_kaldiio_archive_reads_as_kaldiio_reads_it(name):
    ark, scp = MANIFEST["fixtures"][name]["files"]
    expected = _expected(name)
    kind = {"compressed": name.startswith("compressed"), "text": name == "text"}
    _assert_read_as(read_kaldi_ark(ark), expected, **kind)
    _assert_read_as(read_kaldi_scp(scp), expected, **kind)


def test_single_matrices_without_a_key_read_through_an_scp_without_offsets():
    """copy-matrix writes one matrix (no key) to a file; an scp names it without an offset."""
    expected = _expected("bare")
    out = read_kaldi_scp("bare.scp")
    _assert_read_as({"plain": out["plain"]}, {"plain": expected["plain"]})
    _assert_read_as({"compressed": out["compressed"]}, {"compressed": expected["compressed"]},
                    compressed=True)


def test_an_int32_vector_is_refused_as_such(tmp_path):
    """Alignments (ali-to-pdf output, ``copy-int-vector``) are int32 vectors: not features."""
    lengths_and_values = b"".join(b"\4" + struct.pack("<i", v) for v in (3, 7, 7, 9))
    (tmp_path / "ali.ark").write_bytes(b"utt1 \0B" + lengths_and_values)
    with pytest.raises(FeatureError, match=r"utterance 'utt1': an int32 vector \(such as "
                                           r"alignments\), not features \(expected FM"):
        read_kaldi_ark(tmp_path / "ali.ark")


def test_compressed_tolerance_is_below_the_quantisation_step():
    for name in READABLE:
        if name.startswith("compressed"):
            for want in _expected(name).values():
                step = (want.max() - want.min()) / 65535  # the finest any CM form stores
                assert _compressed_tolerance(want) < step / 4, name


def test_scp_ranges_read_as_kaldiio_reads_them():
    """``[a:b]``, ``[a:b,c:d]``, ``[:,c:d]``, ``[a:b,:]``, ranges into a compressed matrix, and
    a row range ending past the last row within Kaldi's tolerance (cut at the last row)."""
    expected = _expected("ranges")
    out = read_kaldi_scp("ranges.scp")
    plain = {k: v for k, v in expected.items() if not k.startswith("cm_")}
    _assert_read_as({k: out[k] for k in plain}, plain)
    cm = {k: v for k, v in expected.items() if k.startswith("cm_")}
    _assert_read_as({k: out[k] for k in cm}, cm, compressed=True)
    assert out["past_end"].shape == (10, 13)


def _scp_into_utt2(tmp_path, ranges):
    """An scp of ``ranges`` into utt2 of float_matrices.ark (40 x 13), one entry each."""
    entries = dict(line.split(maxsplit=1) for line in
                   (FIXTURES / "float_matrices.scp").read_text("utf-8").splitlines())
    target = FIXTURES / entries["utt2"]
    scp = tmp_path / "ranges.scp"
    scp.write_text("".join(f"r{i} {target}{r}\n" for i, r in enumerate(ranges)), encoding="utf-8")
    return scp


def test_a_row_range_past_the_end_is_cut_with_a_warning_as_in_kaldi(tmp_path, caplog):
    whole = _expected("float_matrices")["utt2"]
    with caplog.at_level("WARNING", logger="emkit"):
        out = read_kaldi_scp(_scp_into_utt2(tmp_path, ["[38:42]"]))
    np.testing.assert_array_equal(out["r0"], whole[38:40])
    assert "rows 38:42 go past the matrix's 40 rows: cut at row 39" in caplog.text


@pytest.mark.parametrize("spec, message", [
    ("[30:43]", r"rows 30:43 \(inclusive\) but the matrix has 40 rows \(Kaldi allows a last row "
                r"up to 42"),
    ("[40:41]", r"rows 40:41 \(inclusive\) but the matrix has 40 rows"),
    ("[0:3,0:13]", r"columns 0:13 \(inclusive\) but the matrix has 13 columns"),
    ("[5]", r"a '\[...\]' that is not a Kaldi matrix range \(expected \[r1:r2\] or"),
    ("[0:9:2]", r"not a Kaldi matrix range"),
    ("[,0:3]", r"not a Kaldi matrix range"),
    ("[0:1,0:1,0:1]", r"not a Kaldi matrix range"),
    ("[0:" + "9" * 5000 + "]", r"not a Kaldi matrix range"),
])
def test_ranges_kaldi_refuses_are_refused_saying_why(tmp_path, spec, message):
    with pytest.raises(FeatureError, match=message):
        read_kaldi_scp(_scp_into_utt2(tmp_path, [spec]))


@pytest.mark.parametrize("reader, name", [(read_kaldi_ark, "empty_matrix.ark"),
                                          (read_kaldi_scp, "empty_matrix.scp")])
def test_an_empty_matrix_is_refused_by_name(reader, name):
    """kaldiio reads a (0, 3) matrix; emkit's features need a frame: the message says so (a
    guard: emkit refused it so before these tests)."""
    assert EXPECTED["empty_matrix/0"].shape == (0, 3)
    with pytest.raises(FeatureError, match=r"utterance 'empty'.* has no frames \(shape \(0, 3\)\)"):
        reader(name)


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_kaldiio_read_what_emkit_wrote():
    record = MANIFEST["emkit_written"]
    assert record["checks"] and all(record["checks"].values()), record["checks"]
    for name, digest in record["sha256"].items():  # the files kaldiio checked are these
        assert _sha256(FIXTURES / "emkit_written" / name) == digest, name


def test_emkit_still_writes_the_bytes_kaldiio_read(tmp_path):
    written = FIXTURES / "emkit_written"
    matrices = read_kaldi_ark(written / "feats.ark")
    items = [(key, m.astype(np.float32)) for key, m in matrices.items()]
    ark, scp = write_kaldi_ark(items, tmp_path / "feats.ark")
    assert ark.read_bytes() == (written / "feats.ark").read_bytes()
    # the scp names the archive by its absolute path; the fixture by its name
    lines = scp.read_text(encoding="utf-8").replace(os.path.abspath(ark), "feats.ark")
    assert lines == (written / "feats.scp").read_text(encoding="utf-8")
    with open(tmp_path / "utt2num_frames", "w", encoding="utf-8", newline="\n") as f:
        write_utt2num_frames(f, {key: m.shape for key, m in items})
    assert (tmp_path / "utt2num_frames").read_bytes() == (written / "utt2num_frames").read_bytes()


@pytest.mark.parametrize("name, dtype", [("ivector", np.float32), ("ivector_double", np.float64)])
def test_emkit_still_writes_the_vector_bytes_kaldiio_read(tmp_path, name, dtype):
    """emkit's FV (float32) and DV (float64) vectors: kaldiio read them and wrote the same bytes
    (make_fixtures.py); emkit reads them back and writes them again byte for byte."""
    from emkit.io.kaldi_vectors import read_kaldi_vectors, write_kaldi_vectors

    written = FIXTURES / "emkit_written"
    assert MANIFEST["emkit_written"]["checks"][f"{name}_ark_bytes_equal_kaldiio_save_ark"]
    vectors = read_kaldi_vectors(written / f"{name}.ark")
    assert list(vectors) == ["spk1-utt1", "spk2-utt1", "caf\u00e9:3"]
    assert all(v.shape == (6,) for v in vectors.values())
    ark, scp = write_kaldi_vectors({k: v.astype(dtype) for k, v in vectors.items()},
                                   tmp_path / f"{name}.ark", tmp_path / f"{name}.scp")
    assert ark.read_bytes() == (written / f"{name}.ark").read_bytes()
    lines = scp.read_text(encoding="utf-8").replace(os.path.abspath(ark), f"{name}.ark")
    assert lines == (written / f"{name}.scp").read_text(encoding="utf-8")
    by_scp = read_kaldi_vectors(f"scp:{written / name}.scp")  # (relative: from the scp's folder)
    assert all(np.array_equal(by_scp[k], v) for k, v in vectors.items())
