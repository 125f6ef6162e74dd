"""Vectors (i-vectors) written to Kaldi archives by emkit.io.kaldi_vectors and read back; the
write specifiers it takes (byte-level agreement with kaldiio: test_kaldi_interop.py)."""

import numpy as np
import pytest

from emkit.features import FeatureError
from emkit.io.kaldi_vectors import read_kaldi_vectors, vector_write_specifier, write_kaldi_vectors


def _vectors(dtype=np.float64):
    rng = np.random.default_rng(3)
    return {f"spk{i}-utt{i}": rng.standard_normal(5).astype(dtype) for i in range(4)}


@pytest.mark.parametrize("dtype, token", [(np.float32, b"FV "), (np.float64, b"DV ")])
def test_vectors_written_read_back_equal_through_the_ark_and_the_scp(tmp_path, dtype, token):
    vectors = _vectors(dtype)
    ark, scp = write_kaldi_vectors(vectors, tmp_path / "ivector.ark", tmp_path / "ivector.scp")
    data = ark.read_bytes()
    assert data.startswith(b"spk0-utt0 \0B" + token + b"\4\5\0\0\0")
    assert len(data) == sum(len(k) + 1 + 2 + 3 + 5 + 5 * np.dtype(dtype).itemsize for k in vectors)
    for read in (read_kaldi_vectors(ark), read_kaldi_vectors(scp),
                 read_kaldi_vectors(f"ark:{ark}"), read_kaldi_vectors(f"scp:{scp}")):
        assert list(read) == list(vectors)
        for key, vector in vectors.items():
            assert read[key].shape == (5,) and read[key].dtype == np.float64
            assert np.array_equal(read[key], vector)  # float32 -> float64 exactly


def test_dtype_converts_and_none_keeps_each_vectors_own(tmp_path):
    vectors = _vectors()
    ark, scp = write_kaldi_vectors(vectors, tmp_path / "a.ark", dtype="float32")
    assert scp is None and not (tmp_path / "a.scp").exists()
    assert ark.read_bytes().count(b"\0BFV ") == 4
    read = read_kaldi_vectors(ark)
    assert all(np.array_equal(read[k], v.astype(np.float32)) for k, v in vectors.items())
    pairs = [("a", np.ones(2, np.float32)), ("b", np.ones(2))]  # pairs: FV then DV
    write_kaldi_vectors(pairs, tmp_path / "b.ark")
    assert b"a \0BFV " in (tmp_path / "b.ark").read_bytes()
    assert b"b \0BDV " in (tmp_path / "b.ark").read_bytes()


@pytest.mark.parametrize("vectors, message", [
    ({"a": np.ones(3, dtype=np.int64)},
     "vector 'a': expected float32 .* or give dtype; got 'int64'"),
    ({"a": np.ones((1, 3))}, r"vector 'a': expected a 1-D array .*; got shape \(1, 3\)"),
    ({"a": np.ones(0)},
     r"vector 'a': expected a 1-D array of at least one value; got shape \(0,\)"),
    ({"a": np.array([1.0, np.nan])}, "vector 'a': expected finite values; got NaN or infinity"),
    ({"a b": np.ones(3)}, "a Kaldi key must be .* without white space.*; got 'a b'"),
    ({"": np.ones(3)}, "a Kaldi key must be a non-empty"),
    ([("a", np.ones(3)), ("a", np.ones(3))], "vector 'a' would be written twice"),
])
def test_a_bad_vector_or_key_is_refused_by_name_and_nothing_is_written(tmp_path, vectors, message):
    (tmp_path / "x.ark").write_bytes(b"old")
    with pytest.raises(ValueError, match=message):
        write_kaldi_vectors(vectors, tmp_path / "x.ark", tmp_path / "x.scp")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.ark"]
    assert (tmp_path / "x.ark").read_bytes() == b"old"


def test_a_float64_beyond_float32_is_refused_when_written_as_float32(tmp_path):
    with pytest.raises(ValueError, match="vector 'a': expected finite values; got NaN or infinity "
                                         r"\(in float32\)"):
        write_kaldi_vectors({"a": np.array([1e300])}, tmp_path / "x.ark", dtype=np.float32)


@pytest.mark.parametrize("dtype", ["float16", "int32", 3, "nonsense"])
def test_a_dtype_other_than_float32_or_float64_is_refused(tmp_path, dtype):
    with pytest.raises(ValueError, match="dtype: expected None, 'float32' or 'float64'; got "):
        write_kaldi_vectors({"a": np.ones(2)}, tmp_path / "x.ark", dtype=dtype)


def test_the_input_is_not_changed(tmp_path):
    vector = np.arange(3.0)[::-1]  # not contiguous, read-write
    write_kaldi_vectors({"a": vector}, tmp_path / "x.ark", dtype="float32")
    assert vector.dtype == np.float64 and np.array_equal(vector, [2.0, 1.0, 0.0])


def test_a_matrix_of_several_rows_is_not_read_as_a_vector(tmp_path):
    from emkit.audio import write_kaldi_ark

    write_kaldi_ark([("m", np.ones((2, 3), np.float32))], tmp_path / "m.ark")
    with pytest.raises(FeatureError, match="utterance 'm' is a matrix of 2 rows, not a vector"):
        read_kaldi_vectors(tmp_path / "m.ark")


@pytest.mark.parametrize("spec, expected", [
    ("ark:iv.ark", ("iv.ark", None)),
    ("ark,scp:iv.ark,iv.scp", ("iv.ark", "iv.scp")),
    ("scp,ark:iv.ark,iv.scp", ("iv.ark", "iv.scp")),
    ("ark,scp,f:d/iv.ark,d/iv.scp", ("d/iv.ark", "d/iv.scp")),
    ("ark,b:iv.ark", ("iv.ark", None)),
])
def test_write_specifiers_name_the_archive_and_the_script_file(spec, expected):
    assert vector_write_specifier(spec) == expected


@pytest.mark.parametrize("spec, message", [
    ("iv.ark", "'iv.ark': expected a Kaldi write specifier 'ark:PATH.ark' or "
               "'ark,scp:PATH.ark,PATH.scp'$"),
    ("scp:iv.scp", "got no 'ark' in its options"),
    ("ark,t:iv.ark", "got 't': text archives are not written"),
    ("ark,s,cs:iv.ark", "got the option 'cs', 's', which does not apply to writing"),
    ("ark:", "expected the archive's path after the ':'"),
    ("ark,scp:iv.ark", "expected two paths, the archive's and the script file's"),
    ("ark,scp:a.ark,b.scp,c", "expected two paths"),
    ("ark:-", "piped commands and standard output are not supported"),
    ("ark:| gzip -c > x.gz", "piped commands and standard output are not supported"),
    ("ark,scp:iv.ark,./iv.ark", "the archive and the script file are the same file"),
])
def test_a_bad_write_specifier_is_refused_saying_why(spec, message):
    with pytest.raises(ValueError, match=message.replace("|", r"\|")):
        vector_write_specifier(spec)


def test_an_ark_prefix_reads_an_archive_whatever_its_name(tmp_path):
    """A guard: the prefix, not the suffix, says what the file is."""
    write_kaldi_vectors({"a": np.ones(2)}, tmp_path / "odd.scp")  # an archive named .scp
    assert np.array_equal(read_kaldi_vectors(f"ark:{tmp_path / 'odd.scp'}")["a"], [1.0, 1.0])
    with pytest.raises(FeatureError):
        read_kaldi_vectors(tmp_path / "odd.scp")  # (read as a script file: refused)


def test_many_long_unknown_options_are_named_shortened():
    options = [chr(ord("a") + i % 26) * (50 + i) for i in range(100)]  # (5,000 characters of them)
    with pytest.raises(ValueError) as caught:
        vector_write_specifier(f"ark,{','.join(options)}:iv.ark")
    message = str(caught.value)
    assert len(message) < 500, len(message)  # (the specifier shown by its end, 3 options)
    assert "got the option 'aaaaaaaaaaaaaaaa" in message and "and 97 more, which does not " in message


@pytest.mark.parametrize("vector, dtype", [
    (np.array([1 + 2j, 3 + 0j]), "float32"), (np.array([1 + 2j, 3 + 0j]), None),
    (np.array(["1.5", "2"]), "float32"), (np.array([True, False]), "float64"),
    (np.array([1.0, 2.0], dtype=object), "float64"),
])
def test_an_array_of_other_than_real_numbers_is_refused_by_name(tmp_path, vector, dtype):
    # complex values lost their imaginary part in float32; strings raised numpy's message
    with pytest.raises(ValueError, match="^vector 'a': expected real numbers; got an array of "
                                         f"'{vector.dtype}'$"):
        write_kaldi_vectors({"a": vector}, tmp_path / "x.ark", dtype=dtype)
    assert not (tmp_path / "x.ark").exists()
