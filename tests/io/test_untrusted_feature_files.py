"""Adversarial feature files: every one is refused with the exact error, or read correctly.

Each refused case asserts: a ``FeatureError`` (an ``InvalidFileError``, a ``ValueError``), a
message that says what is wrong, names the file (and the utterance where there is one) and does
not contain the file's bytes (every payload carries the marker ``SECRET``).  Reading is guarded by
an alarm so that a reader blocking on a pipe fails the test instead of hanging the suite.
"""

import os
import re
import struct
import warnings
import zipfile

import h5py
import numpy as np
import pytest

from emkit.features import FeatureError, InvalidFileError, read_features, read_kaldi_scp
from emkit.io.arrays import directory_frames, hdf5_frames
from emkit.io.untrusted import MAX_UTTERANCE_BYTES
from feature_files import compressed, kaldi_binary, peak_bytes, size, write_ark

SECRET = "S3CR3T"
CASES = {}


def case(pattern, utterance=None):
    """Register a builder ``f(tmp_path) -> (callable, file named in the message)``."""
    def register(build):
        CASES[build.__name__] = (build, pattern, utterance)
        return build
    return register


def _file(tmp_path, name, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _ark(tmp_path, content: bytes, name="x.ark"):
    path = _file(tmp_path, name, content)
    return (lambda: read_features(path)), str(path)


def _fm(rows, cols, token="FM"):
    return f"{token} ".encode() + size(rows) + size(cols)


def _npy_bytes(descr, shape, payload: bytes, fortran=False, version=1, header=None):
    text = header or f"{{'descr': {descr!r}, 'fortran_order': {fortran}, 'shape': {shape!r}, }}"
    body = text.encode("latin-1")
    prefix = 10 if version == 1 else 12
    body += b" " * ((-(prefix + len(body) + 1)) % 64) + b"\n"
    size_field = struct.pack("<H" if version == 1 else "<I", len(body))
    return b"\x93NUMPY" + bytes([version, 0]) + size_field + body + payload


def _npy(tmp_path, content: bytes, name="u1.npy"):
    path = _file(tmp_path, name, content)
    return (lambda: read_features(path)), str(path)


def _npz(tmp_path, members: dict, name="x.npz", method=zipfile.ZIP_STORED):
    path = tmp_path / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        with zipfile.ZipFile(path, "w", compression=method) as z:
            for member, content in members.items() if isinstance(members, dict) else members:
                z.writestr(member, content)
    return (lambda: read_features(path)), str(path)


def _npy_member(array) -> bytes:
    import io
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _scp(tmp_path, lines: str, name="x.scp"):
    path = tmp_path / name
    path.write_text(lines)
    return (lambda: read_kaldi_scp(path)), str(path)


SECRET_PAYLOAD = (SECRET * 4).encode()
GOOD = np.arange(12.0).reshape(4, 3)

# ---------------------------------------------------------------------------------------------
# Kaldi archives: declared sizes, overflow, compressed headers, degenerate matrices
# ---------------------------------------------------------------------------------------------


@case(r"ends in the middle of the matrix: its header declares 3221225472 bytes", "u1")
def ark_66_bytes_declaring_3_gib(tmp_path):
    content = b"u1 \0B" + _fm(2**20, 768) + SECRET_PAYLOAD + b"\0" * 24
    assert len(content) == 66
    return _ark(tmp_path, content)


@case(r"declares 25769803776 bytes but only 24 remain", "u1")
def ark_declaring_24_gib_doubles(tmp_path):
    return _ark(tmp_path, b"u1 \0B" + _fm(2**21, 1536, "DM") + SECRET_PAYLOAD)


@case(r"declares 18446744056529682436 bytes", "u1")
def ark_rows_times_cols_overflowing_int64(tmp_path):
    return _ark(tmp_path, b"u1 \0B" + _fm(2**31 - 1, 2**31 - 1) + SECRET_PAYLOAD)


@case(r"negative matrix size -5 x 3", "u1")
def ark_negative_rows(tmp_path):
    return _ark(tmp_path, b"u1 \0B" + _fm(-5, 3) + SECRET_PAYLOAD)


@case(r"ends in the middle of the compressed matrix: its header declares 19327352823 bytes", "u1")
def ark_cm_header_with_huge_column_count(tmp_path):
    return _ark(tmp_path, b"u1 \0B" + compressed("CM", 0.0, 1.0, 1, 2**31 - 1, SECRET_PAYLOAD))


@case(r"compressed matrix: its header declares 9223372028264841218 bytes", "u1")
def ark_cm2_rows_times_cols_overflowing(tmp_path):
    return _ark(tmp_path, b"u1 \0B" + compressed("CM2", 0.0, 1.0, 2**31 - 1, 2**31 - 1,
                                                  SECRET_PAYLOAD))


@case(r"compressed matrix: its header declares 4611686014132420609 bytes", "u1")
def ark_cm3_rows_times_cols_overflowing(tmp_path):
    return _ark(tmp_path, b"u1 \0B" + compressed("CM3", 0.0, 1.0, 2**31 - 1, 2**31 - 1,
                                                  SECRET_PAYLOAD))


@case(r"negative matrix size 4 x -1", "u1")
def ark_cm_negative_columns(tmp_path):
    return _ark(tmp_path, b"u1 \0B" + compressed("CM", 0.0, 1.0, 4, -1, SECRET_PAYLOAD))


@case(r"declares 8589934588 bytes but only 24 remain", "u1")
def ark_float_vector_of_2_gib(tmp_path):
    return _ark(tmp_path, b"u1 \0BFV " + size(2**31 - 1) + SECRET_PAYLOAD)


@case(r"ends in the middle of the matrix: its header declares 24 bytes but only 8 remain", "u1")
def ark_truncated_matrix(tmp_path):
    return _ark(tmp_path, b"u1 \0B" + _fm(2, 3) + b"SECRET\0\0")


@case(r"has no features per frame \(shape \(40, 0\)\)", "u1")
def ark_40_by_0_matrix(tmp_path):
    return _ark(tmp_path, b"u1 \0B" + _fm(40, 0))


@case(r"has no frames \(shape \(0, 40\)\)", "u1")
def ark_0_by_40_matrix(tmp_path):
    return _ark(tmp_path, b"u1 \0B" + _fm(0, 40))


@case(r"has no frames \(shape \(0, 0\)\)", "u1")
def ark_empty_text_matrix(tmp_path):
    return _ark(tmp_path, b"u1 [ ]\n")


@case(r"contains NaN or infinite values", "u2")
def ark_nan_in_binary_matrix(tmp_path):
    bad = GOOD.copy()
    bad[2, 1] = np.nan
    return _ark(tmp_path, b"u1 \0B" + kaldi_binary(GOOD, "DM") + b"u2 \0B"
                + kaldi_binary(bad, "DM"))


@case(r"contains NaN or infinite values", "u1")
def ark_inf_in_text_matrix(tmp_path):
    return _ark(tmp_path, b"u1 [ 1 2\n 3 inf ]\n")


@case(r"contains NaN or infinite values", "u1")
def ark_cm3_with_nan_range(tmp_path):
    return _ark(tmp_path, b"u1 \0B" + compressed("CM3", 0.0, float("nan"), 1, 2, b"\1\2"))


@case(r"unsupported Kaldi object type \(expected FM, DM", "u1")
def ark_unknown_object_type(tmp_path):
    return _ark(tmp_path, b"u1 \0B" + SECRET_PAYLOAD)


@case(r"row 1 of the text matrix holds something that is not a number", "u1")
def ark_text_matrix_with_a_word(tmp_path):
    return _ark(tmp_path, f"u1 [ 1 {SECRET} ]\n".encode())


@case(r"row 1 of the text matrix holds something that is not a number", "u1")
def ark_text_matrix_with_a_200_kb_token(tmp_path):
    return _ark(tmp_path, b"u1 [ 1 " + b"9" * 200_000 + b" 2 ]\n")


@case(r"expected the size byte 4 before an int32", "u1")
def ark_wrong_size_byte(tmp_path):
    return _ark(tmp_path, b"u1 \0BFM \x08" + SECRET_PAYLOAD)


@case(r"entry 1 \(byte 0\): not a Kaldi archive entry")
def ark_binary_garbage(tmp_path):
    return _ark(tmp_path, b"\x00\x01\xff" + SECRET_PAYLOAD + b" \0B" + _fm(1, 1))


@case(r"entry 1 \(byte 0\): not a Kaldi archive entry")
def ark_that_is_a_text_file(tmp_path):
    return _ark(tmp_path, f"root:{SECRET}:0:0:/root:/bin/sh\nnext line\n".encode())


@case(r"entry 2 \(byte \d+\): not a Kaldi archive entry")
def ark_key_longer_than_1024_bytes(tmp_path):
    return _ark(tmp_path, b"u1 \0B" + kaldi_binary(GOOD) + b"a" * 2000 + SECRET_PAYLOAD)


@case(r"no Kaldi matrix at byte 3 \(expected the binary marker", "u1")
def ark_key_without_matrix(tmp_path):
    return _ark(tmp_path, b"u1 " + SECRET_PAYLOAD)


@case(r"utterance 'u1' appears twice")
def ark_duplicate_key(tmp_path):
    return _ark(tmp_path, b"u1 \0B" + kaldi_binary(GOOD) + b"\nu1 \0B" + kaldi_binary(GOOD))


@case(r"a 4 x 3 matrix \(96 bytes as float64\) exceeds max_utterance_bytes=64", "u1")
def ark_over_the_utterance_limit(tmp_path):
    path = _file(tmp_path, "x.ark", b"u1 \0B" + kaldi_binary(GOOD, "DM"))
    return (lambda: read_features(path, max_utterance_bytes=64)), str(path)


@case(r"a 3 x 3 matrix \(72 bytes as float64\) exceeds max_utterance_bytes=64", "u1")
def text_ark_over_the_utterance_limit(tmp_path):
    path = _file(tmp_path, "x.ark", b"u1 [ 1 2 3\n 4 5 6\n 7 8 9\n 10 11 12 ]\n")
    return (lambda: read_features(path, max_utterance_bytes=64)), str(path)


@case(r"is a directory, not a regular file")
def ark_that_is_a_directory(tmp_path):
    (tmp_path / "d.ark").mkdir()
    return (lambda: read_features(tmp_path / "d.ark")), str(tmp_path / "d.ark")


@case(r"is a named pipe, not a regular file")
def ark_that_is_a_named_pipe(tmp_path):
    os.mkfifo(tmp_path / "p.ark")
    return (lambda: read_features(tmp_path / "p.ark")), str(tmp_path / "p.ark")


@case(r"is a character device, not a regular file")
def ark_prefix_on_dev_zero(tmp_path):
    return (lambda: read_features("ark:/dev/zero")), "/dev/zero"


# ---------------------------------------------------------------------------------------------
# Kaldi script files: pipes, devices, links, ranges, offsets, and what an entry points to
# ---------------------------------------------------------------------------------------------


def _good_ark(tmp_path):
    return write_ark(tmp_path / "good.ark", {"u1": GOOD, "u2": GOOD + 1}, "DM")


@case(r"line 1 \(utterance 'u1'\): .*'/dev/zero' is a character device, not a regular file")
def scp_pointing_to_dev_zero(tmp_path):
    return _scp(tmp_path, "u1 /dev/zero\n")


@case(r"line 2 \(utterance 'u2'\): .*pipe.ark' is a named pipe, not a regular file")
def scp_pointing_to_a_named_pipe(tmp_path):
    offsets = _good_ark(tmp_path)
    os.mkfifo(tmp_path / "pipe.ark")
    return _scp(tmp_path, f"u1 good.ark:{offsets['u1']}\nu2 pipe.ark:0\n")


@case(r"line 1 \(utterance 'u1'\): .*zero.ark' is a character device")
def scp_pointing_to_a_link_to_dev_zero(tmp_path):
    os.symlink("/dev/zero", tmp_path / "zero.ark")
    return _scp(tmp_path, "u1 zero.ark:0\n")


@case(r"line 1 \(utterance 'u1'\): .*sub' is a directory")
def scp_pointing_to_a_directory(tmp_path):
    (tmp_path / "sub").mkdir()
    return _scp(tmp_path, "u1 sub:0\n")


@case(r"line 1 \(utterance 'u1'\): no such file .*dangling.ark")
def scp_pointing_to_a_dangling_link(tmp_path):
    os.symlink(tmp_path / "nowhere.ark", tmp_path / "dangling.ark")
    return _scp(tmp_path, "u1 dangling.ark:0\n")


@case(r"line 1 \(utterance 'u1'\): .*good.ark: the range selects rows 0:1000 \(inclusive\) but "
      r"the matrix has 4 rows")
def scp_row_range_beyond_the_matrix(tmp_path):
    offsets = _good_ark(tmp_path)
    return _scp(tmp_path, f"u1 good.ark:{offsets['u1']}[0:1000]\n")


@case(r"the range selects rows 3:1 \(inclusive\) but the matrix has 4 rows", "u1")
def scp_reversed_row_range(tmp_path):
    offsets = _good_ark(tmp_path)
    return _scp(tmp_path, f"u1 good.ark:{offsets['u1']}[3:1]\n")


@case(r"the range selects columns 0:10 \(inclusive\) but the matrix has 3 columns", "u2")
def scp_column_range_beyond_the_matrix(tmp_path):
    offsets = _good_ark(tmp_path)
    return _scp(tmp_path, f"u2 good.ark:{offsets['u2']}[0:1,0:10]\n")


@case(r"offset 99999999999999999999 is beyond the end of the file \(\d+ bytes\)", "u1")
def scp_offset_beyond_the_end(tmp_path):
    _good_ark(tmp_path)
    return _scp(tmp_path, "u1 good.ark:99999999999999999999\n")


@case(r"secret.txt: no Kaldi matrix at byte 0 \(expected the binary marker", "u1")
def scp_pointing_to_a_text_file(tmp_path):
    _file(tmp_path, "secret.txt", f"password {SECRET} is here\n".encode())
    return _scp(tmp_path, "u1 secret.txt\n")


@case(r"good.ark: no Kaldi matrix at byte 1", "u1")
def scp_offset_into_the_middle_of_a_key(tmp_path):
    _good_ark(tmp_path)
    return _scp(tmp_path, "u1 good.ark:1\n")


@case(r"line 2: expected 'key rxfilename' \(a key, a space, a file name\)")
def scp_line_with_only_a_key(tmp_path):
    offsets = _good_ark(tmp_path)
    return _scp(tmp_path, f"u1 good.ark:{offsets['u1']}\n{SECRET}\n")


@case(r"line 1: not UTF-8 text; not a Kaldi script file")
def scp_that_is_binary(tmp_path):
    path = _file(tmp_path, "x.scp", b"\xff\xfe" + SECRET_PAYLOAD + b"\x80\n")
    return (lambda: read_kaldi_scp(path)), str(path)


@case(r"line 1: longer than 65536 bytes; not a Kaldi script file")
def scp_with_an_endless_line(tmp_path):
    return _scp(tmp_path, "u1 " + SECRET * 20000 + "\n")


@case(r"line 3 \(utterance 'u1'\): utterance 'u1' appears twice")
def scp_duplicate_key(tmp_path):
    offsets = _good_ark(tmp_path)
    return _scp(tmp_path, f"u1 good.ark:{offsets['u1']}\n# c\nu1 good.ark:{offsets['u2']}\n")


@case(r"line 1 \(utterance 'u1'\): piped commands are not supported \(emkit runs no command named in "
      r"a list\); run the pipeline first, e.g. Kaldi's copy-feats")
def scp_piped_command(tmp_path):
    return _scp(tmp_path, f"u1 gunzip -c {SECRET}.ark.gz |\n")


@case(r"line 1 \(utterance 'u1'\): .*one.mat: the file ends in the middle of the matrix: its "
      r"header declares 3221225472 bytes")
def scp_pointing_to_a_lying_matrix_file(tmp_path):
    _file(tmp_path, "one.mat", b"\0B" + _fm(2**20, 768) + SECRET_PAYLOAD)
    return _scp(tmp_path, "u1 one.mat\n")


# ---------------------------------------------------------------------------------------------
# .npy
# ---------------------------------------------------------------------------------------------


@case(r"declares shape \(2147483647, 300\) of float64 \(5153960752800 bytes\) but the file "
      r"holds 96 bytes of data", "u1")
def npy_12_values_declaring_2147483647_by_300(tmp_path):
    payload = (SECRET_PAYLOAD * 4)[:96]
    return _npy(tmp_path, _npy_bytes("<f8", (2147483647, 300), payload))


@case(r"declares shape \(4, 3\) of float64 \(96 bytes\) but the file holds 40 bytes", "u1")
def npy_truncated(tmp_path):
    return _npy(tmp_path, _npy_bytes("<f8", (4, 3), (SECRET_PAYLOAD * 2)[:40]))


@case(r"declares shape \(1, 3\) of float64 \(24 bytes\) but the file holds 48 bytes", "u1")
def npy_with_trailing_bytes(tmp_path):
    return _npy(tmp_path, _npy_bytes("<f8", (1, 3), b"\0" * 24 + SECRET_PAYLOAD[:24]))


@case(r"dtype object is not numeric", "u1")
def npy_object_dtype(tmp_path):
    return _npy(tmp_path, _npy_bytes("|O", (2, 2), b"\x80\x04" + SECRET_PAYLOAD))


@case(r"structured dtypes are not features", "u1")
def npy_structured_dtype(tmp_path):
    header = "{'descr': [('a', '<f8'), ('b', '<f8')], 'fortran_order': False, 'shape': (2,), }"
    return _npy(tmp_path, _npy_bytes(None, None, b"\0" * 32, header=header))


@case(r"dtype complex128 is not numeric", "u1")
def npy_complex_dtype(tmp_path):
    return _npy(tmp_path, _npy_bytes("<c16", (1, 1), b"\0" * 16))


@case(r"dtype str\d* is not numeric", "u1")
def npy_unicode_dtype(tmp_path):
    return _npy(tmp_path, _npy_bytes("<U6", (1, 1), SECRET.encode("utf-32-le")))


@case(r"dtype bool is not numeric", "u1")
def npy_bool_dtype(tmp_path):
    return _npy(tmp_path, _npy_bytes("|b1", (2, 2), b"\1\0\1\0"))


@case(r"the .npy header names no valid dtype", "u1")
def npy_invalid_dtype_string(tmp_path):
    return _npy(tmp_path, _npy_bytes(SECRET, (1, 1), b"\0" * 8))


@case(r"the .npy header is not a dictionary with the keys 'descr', 'fortran_order' and 'shape'",
      "u1")
def npy_header_that_is_code(tmp_path):
    header = f"__import__('os').system('echo {SECRET}')"
    return _npy(tmp_path, _npy_bytes(None, None, b"", header=header))


@case(r"the .npy header is not a dictionary", "u1")
def npy_header_deeply_nested(tmp_path):
    return _npy(tmp_path, _npy_bytes(None, None, b"", header="(" * 5000 + ")" * 5000))


@case(r"'shape' in the .npy header is not a tuple of sizes >= 0", "u1")
def npy_negative_shape(tmp_path):
    return _npy(tmp_path, _npy_bytes("<f8", (-1, 3), SECRET_PAYLOAD))


@case(r"'shape' in the .npy header is not a tuple of sizes >= 0 \(and below 2\*\*63\)", "u1")
def npy_shape_beyond_numpy(tmp_path):  # numpy's own "Maximum allowed dimension exceeded" named nothing
    return _npy(tmp_path, _npy_bytes("<f8", (2**64, 0), SECRET_PAYLOAD))


@case(r"'fortran_order' in the .npy header is not True or False", "u1")
def npy_fortran_order_not_bool(tmp_path):
    header = f"{{'descr': '<f8', 'fortran_order': '{SECRET}', 'shape': (1, 1), }}"
    return _npy(tmp_path, _npy_bytes(None, None, b"\0" * 8, header=header))


@case(r"the file ends in the middle of the .npy header: its header declares 60000 bytes", "u1")
def npy_header_length_beyond_the_file(tmp_path):
    return _npy(tmp_path, b"\x93NUMPY\x01\x00" + struct.pack("<H", 60000) + SECRET_PAYLOAD)


@case(r"the .npy header declares 4000000000 bytes \(at most 65536 accepted\)", "u1")
def npy_version_2_header_of_4_gb(tmp_path):
    return _npy(tmp_path, b"\x93NUMPY\x02\x00" + struct.pack("<I", 4 * 10**9) + SECRET_PAYLOAD)


@case(r"unsupported .npy format version 9", "u1")
def npy_unknown_version(tmp_path):
    return _npy(tmp_path, b"\x93NUMPY\x09\x00\x10\x00" + SECRET_PAYLOAD)


@case(r"must be a 2-D numeric array \(n_frames, n_features\); got shape \(3,\)", "u1")
def npy_one_dimensional(tmp_path):
    return _npy(tmp_path, _npy_member(np.ones(3)))


@case(r"must be a 2-D numeric array \(n_frames, n_features\); got shape \(2, 2, 2\)", "u1")
def npy_three_dimensional(tmp_path):
    return _npy(tmp_path, _npy_member(np.ones((2, 2, 2))))


@case(r"has no features per frame \(shape \(40, 0\)\)", "u1")
def npy_40_by_0(tmp_path):
    return _npy(tmp_path, _npy_member(np.ones((40, 0))))


@case(r"has no frames \(shape \(0, 40\)\)", "u1")
def npy_0_by_40(tmp_path):
    return _npy(tmp_path, _npy_member(np.ones((0, 40))))


@case(r"contains NaN or infinite values", "u1")
def npy_with_inf(tmp_path):
    return _npy(tmp_path, _npy_member(np.array([[1.0, -np.inf]])))


@case(r"a 4 x 3 matrix \(96 bytes as float64\) exceeds max_utterance_bytes=95", "u1")
def npy_over_the_utterance_limit(tmp_path):
    path = _file(tmp_path, "u1.npy", _npy_member(GOOD.astype(np.float32)))
    return (lambda: read_features(path, max_utterance_bytes=95)), str(path)


# ---------------------------------------------------------------------------------------------
# .npz
# ---------------------------------------------------------------------------------------------


@case(r"\d+ compressed bytes declare 16000128 bytes of data, more than 100 times as many "
      r"\(refused as a possible zip bomb\)", "bomb")
def npz_zip_bomb(tmp_path):
    return _npz(tmp_path, {"bomb.npy": _npy_member(np.zeros((1000, 2000)))},
                method=zipfile.ZIP_DEFLATED)


@case(r"not a valid .npz file \(not a zip archive, or a damaged one\)")
def npz_that_is_not_a_zip(tmp_path):
    path = _file(tmp_path, "x.npz", f"hello {SECRET}\n".encode())
    return (lambda: read_features(path)), str(path)


@case(r"not a valid .npz file")
def npz_truncated(tmp_path):
    _npz(tmp_path, {"a.npy": _npy_member(GOOD), "b.npy": _npy_member(GOOD)})
    content = (tmp_path / "x.npz").read_bytes()
    return _npy(tmp_path, content[: len(content) // 2], name="x.npz")


@case(r"declares shape \(2147483647, 300\) of float64 \(5153960752800 bytes\) but the member "
      r"holds 96 bytes of data", "a")
def npz_member_declaring_a_huge_shape(tmp_path):
    return _npz(tmp_path, {"a.npy": _npy_bytes("<f8", (2147483647, 300), SECRET_PAYLOAD * 4)})


@case(r"dtype object is not numeric", "a")
def npz_member_with_object_dtype(tmp_path):
    return _npz(tmp_path, {"a.npy": _npy_bytes("|O", (1, 1), b"\x80\x04" + SECRET_PAYLOAD)})


@case(r"member 'notes.txt' is not a .npy array")
def npz_member_that_is_not_npy(tmp_path):
    return _npz(tmp_path, {"a.npy": _npy_member(GOOD), "notes.txt": SECRET_PAYLOAD})


@case(r"the member is damaged \(bad zip entry, bad compressed data or a checksum mismatch\)", "a")
def npz_member_with_bad_crc(tmp_path):
    _npz(tmp_path, {"a.npy": _npy_member(GOOD)})
    content = bytearray((tmp_path / "x.npz").read_bytes())
    content[200] ^= 0xFF  # a data byte of the stored member
    return _npy(tmp_path, bytes(content), name="x.npz")


@case(r"utterance 'a' appears twice")
def npz_duplicate_member(tmp_path):
    return _npz(tmp_path, [("a.npy", _npy_member(GOOD)), ("a.npy", _npy_member(GOOD))])


@case(r"uses zip compression method 12; only stored and deflated members", "a")
def npz_bzip2_member(tmp_path):
    return _npz(tmp_path, {"a.npy": _npy_member(GOOD)}, method=zipfile.ZIP_BZIP2)


@case(r"contains NaN or infinite values", "b")
def npz_member_with_nan(tmp_path):
    return _npz(tmp_path, {"a.npy": _npy_member(GOOD), "b.npy": _npy_member(GOOD * np.nan)})


# ---------------------------------------------------------------------------------------------
# HDF5
# ---------------------------------------------------------------------------------------------


def _h5(tmp_path, build, name="x.h5"):
    path = tmp_path / name
    with h5py.File(path, "w") as f:
        build(f)
    return (lambda: read_features(path)), str(path)


@case(r"declares shape \(2147483648, 64\) of float64 \(1099511627776 bytes\) but stores only 0 "
      r"bytes \(unwritten data\)", "spk/u1")
def h5_dataset_declared_but_never_written(tmp_path):
    return _h5(tmp_path, lambda f: f.create_dataset("spk/u1", shape=(2**31, 64), dtype="<f8"))


@case(r"declares shape \(1000000, 60\) of float32 \(240000000 bytes\) but stores only 6000 bytes",
      "u1")
def h5_chunked_dataset_mostly_unwritten(tmp_path):
    def build(f):
        ds = f.create_dataset("u1", shape=(10**6, 60), dtype="<f4", chunks=(25, 60))
        ds[:25] = 1.0
    return _h5(tmp_path, build)


@case(r"declares 8000000000 bytes from \d+ compressed bytes, more than 100 times as many", "u1")
def h5_compressed_dataset_mostly_unwritten(tmp_path):
    def build(f):
        ds = f.create_dataset("u1", shape=(10**7, 100), dtype="<f8", chunks=(100, 100),
                              compression="gzip")
        ds[:100] = 1.0
    return _h5(tmp_path, build)


@case(r"keeps its data in external files; refused", "u1")
def h5_dataset_with_external_storage(tmp_path):
    _file(tmp_path, "raw.bin", SECRET_PAYLOAD * 4)
    return _h5(tmp_path, lambda f: f.create_dataset("u1", shape=(2, 6), dtype="<f8",
                                                    external=[(str(tmp_path / "raw.bin"), 0, 96)]))


@case(r"is a virtual dataset \(it reads other files\); refused", "u1")
def h5_virtual_dataset(tmp_path):
    with h5py.File(tmp_path / "src.h5", "w") as f:
        f["data"] = GOOD
    def build(f):
        layout = h5py.VirtualLayout(shape=(4, 3), dtype="<f8")
        layout[:] = h5py.VirtualSource(str(tmp_path / "src.h5"), "data", shape=(4, 3))
        f.create_virtual_dataset("u1", layout)
    return _h5(tmp_path, build)


@case(r"dtype .* is not numeric \(integers or floats\)", "x")
def h5_compound_array_dataset(tmp_path):
    dtype = np.dtype([("a", "<f8"), ("b", "<f8")])
    return _h5(tmp_path, lambda f: f.create_dataset("array", data=np.zeros((2, 2), dtype)))


@case(r"dtype object is not numeric \(integers or floats\)", "x")
def h5_variable_length_array_dataset(tmp_path):
    dtype = h5py.vlen_dtype(np.float64)
    def build(f):
        ds = f.create_dataset("array", shape=(2, 2), dtype=dtype)
        ds[0, 0] = np.arange(3.0)
    return _h5(tmp_path, build)


@case(r"not a readable HDF5 file \(\d+ bytes; h5py: .*signature")
def h5_that_is_a_text_file(tmp_path):
    path = _file(tmp_path, "x.h5", f"hello {SECRET}\n".encode() * 10)
    return (lambda: read_features(path)), str(path)


@case(r"not a readable HDF5 file \(\d+ bytes; h5py: .*truncated")
def h5_truncated(tmp_path):
    with h5py.File(tmp_path / "full.h5", "w") as f:
        f["u1"] = np.full((400, 10), 7.0)
    content = (tmp_path / "full.h5").read_bytes()
    return _npy(tmp_path, content[:3000], name="x.h5")


@case(r"contains NaN or infinite values", "spk/u1")
def h5_dataset_with_nan(tmp_path):
    return _h5(tmp_path, lambda f: f.create_dataset("spk/u1", data=GOOD * np.nan))


@case(r"has no features per frame \(shape \(40, 0\)\)", "u1")
def h5_40_by_0_dataset(tmp_path):
    return _h5(tmp_path, lambda f: f.create_dataset("u1", shape=(40, 0), dtype="<f8"))


@case(r"a 4 x 3 matrix \(96 bytes as float64\) exceeds max_utterance_bytes=64", "u1")
def h5_over_the_utterance_limit(tmp_path):
    call, name = _h5(tmp_path, lambda f: f.create_dataset("u1", data=GOOD))
    return (lambda: read_features(name, max_utterance_bytes=64)), name


@case(r"is a named pipe, not a regular file")
def h5_that_is_a_named_pipe(tmp_path):
    os.mkfifo(tmp_path / "p.h5")
    return (lambda: read_features(tmp_path / "p.h5")), str(tmp_path / "p.h5")


# ---------------------------------------------------------------------------------------------
# the out-of-core readers of emkit.io.arrays
# ---------------------------------------------------------------------------------------------


@case(r"declares shape \(2147483647, 300\) of float64 .* but the file holds 96 bytes")
def directory_with_a_lying_npy_header(tmp_path):
    (tmp_path / "d").mkdir()
    _file(tmp_path / "d", "u1.npy", _npy_bytes("<f8", (2147483647, 300), SECRET_PAYLOAD * 4))
    return (lambda: directory_frames(tmp_path / "d")), str(tmp_path / "d" / "u1.npy")


@case(r"dtype object is not numeric")
def directory_with_an_object_npy(tmp_path):
    (tmp_path / "d").mkdir()
    np.save(tmp_path / "d" / "u0.npy", GOOD)
    _file(tmp_path / "d", "u1.npy", _npy_bytes("|O", (2, 2), b"\x80\x04" + SECRET_PAYLOAD))
    return (lambda: directory_frames(tmp_path / "d")), str(tmp_path / "d" / "u1.npy")


@case(r"dataset 'frames' declares shape \(1000000, 3\) of float64 \(24000000 bytes\) but stores "
      r"only 0 bytes")
def hdf5_frames_declared_but_never_written(tmp_path):
    path = tmp_path / "big.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("frames", shape=(10**6, 3), dtype="<f8")
    return (lambda: hdf5_frames(path)), str(path)


@case(r"dataset 'frames' is empty \(shape \(0, 3\)\)")
def hdf5_frames_without_rows(tmp_path):
    path = tmp_path / "empty.h5"
    with h5py.File(path, "w") as f:
        f["frames"] = np.ones((0, 3))
    return (lambda: hdf5_frames(path)), str(path)


@case(r"dataset 'frames' must be a 2-D dataset \(n_frames, n_features\); got shape \(5,\)")
def hdf5_frames_one_dimensional(tmp_path):
    path = tmp_path / "flat.h5"
    with h5py.File(path, "w") as f:
        f["frames"] = np.ones(5)
    return (lambda: hdf5_frames(path)), str(path)


@pytest.mark.parametrize("name", sorted(CASES))
def test_refused_with_a_message_naming_the_file(name, tmp_path, no_hang):
    build, pattern, utterance = CASES[name]
    call, filename = build(tmp_path)
    with pytest.raises(FeatureError) as info:
        call()
    message = str(info.value)
    assert isinstance(info.value, InvalidFileError) and isinstance(info.value, ValueError)
    assert re.search(pattern, message), message
    assert filename in message, message
    if utterance is not None:
        assert repr(utterance) in message, message
    assert SECRET not in message and "\\x00" not in message, message


def test_there_are_enough_cases():
    assert len(CASES) >= 50


# ---------------------------------------------------------------------------------------------
# accepted: read correctly
# ---------------------------------------------------------------------------------------------


def test_byte_order_marks_are_skipped(tmp_path):
    offsets = write_ark(tmp_path / "a.ark", {"u1": GOOD, "u2": GOOD + 1}, "DM")
    (tmp_path / "x.scp").write_bytes(b"\xef\xbb\xbf" + f"u1 a.ark:{offsets['u1']}\n".encode())
    assert list(read_kaldi_scp(tmp_path / "x.scp")) == ["u1"]
    (tmp_path / "t.ark").write_bytes(b"\xef\xbb\xbfu1 [ 1 2\n 3 4 ]\n")
    out = read_features(tmp_path / "t.ark")
    assert list(out) == ["u1"]
    np.testing.assert_array_equal(out["u1"], [[1, 2], [3, 4]])


def test_scp_ranges_inside_the_matrix_and_links_to_regular_files(tmp_path):
    offsets = write_ark(tmp_path / "a.ark", {"u1": GOOD}, "DM")
    os.symlink(tmp_path / "a.ark", tmp_path / "link.ark")
    (tmp_path / "x.scp").write_text(f"u1 link.ark:{offsets['u1']}[3:3,0:2]\n"
                                    f"u2 ../{tmp_path.name}/a.ark:{offsets['u1']}[0:3]\n")
    out = read_kaldi_scp(tmp_path / "x.scp")
    np.testing.assert_array_equal(out["u1"], GOOD[3:4, 0:3])
    np.testing.assert_array_equal(out["u2"], GOOD)


def test_a_script_file_cannot_return_one_matrix_many_times(tmp_path):
    # 3000 lines naming one 512 kB matrix returned 3 GB from 570 kB of input
    offsets = write_ark(tmp_path / "a.ark", {"u1": GOOD, "u2": GOOD}, "DM")
    (tmp_path / "x.scp").write_text("".join(f"k{i} a.ark:{offsets['u1']}\n" for i in range(3)))
    with pytest.raises(FeatureError, match=r"x.scp line 2 \(utterance 'k1'\): .*a.ark: the entries reading "
                                           r"the matrix at offset \d+ take 24 values of its 12"):
        read_kaldi_scp(tmp_path / "x.scp")
    # an offset inside another entry's matrix (a header forged in its values) is refused
    inner = b"\0B" + kaldi_binary(np.ones((1, 1)), "FM") + b"\0"  # 20 bytes: 5 finite float32
    payload = inner + np.ones(3, "<f4").tobytes()
    assert np.isfinite(np.frombuffer(payload, "<f4")).all()
    (tmp_path / "b.ark").write_bytes(b"u1 \0BFM " + size(1) + size(8) + payload)
    (tmp_path / "y.scp").write_text("k0 b.ark:3\nk1 b.ark:18\n")
    with pytest.raises(FeatureError, match=r"line 2 .*overlaps the bytes of another entry's matrix"):
        read_kaldi_scp(tmp_path / "y.scp")
    (tmp_path / "y.scp").write_text("k1 b.ark:18\n")
    np.testing.assert_array_equal(read_kaldi_scp(tmp_path / "y.scp")["k1"], [[1.0]])  # (it is a matrix)
    # segments of one matrix may overlap (sliding windows), up to 16 times its values
    rows = GOOD.shape[0]
    lines = [f"s{i} a.ark:{offsets['u2']}[0:{rows - 1}]\n" for i in range(16)]
    (tmp_path / "z.scp").write_text(f"u1 a.ark:{offsets['u1']}\n" + "".join(lines))
    out = read_kaldi_scp(tmp_path / "z.scp")
    assert len(out) == 17 and all(np.array_equal(v, GOOD) for v in out.values())
    (tmp_path / "z.scp").write_text("".join(lines) + f"s16 a.ark:{offsets['u2']}[0:0]\n")
    with pytest.raises(FeatureError, match="line 17 .* at most 16 times over"):
        read_kaldi_scp(tmp_path / "z.scp")


def test_a_file_name_with_control_characters_is_not_echoed_raw(tmp_path):
    name = "\x1b[2J\x1b[31mnot.ark"
    (tmp_path / name).write_bytes(b"not a matrix " + SECRET.encode())
    (tmp_path / "x.scp").write_text(f"u1 {name}\n")
    with pytest.raises(FeatureError) as info:
        read_kaldi_scp(tmp_path / "x.scp")
    assert "\x1b" not in str(info.value) and r"\x1b[2J" in str(info.value) and SECRET not in str(info.value)


def test_fortran_order_and_big_endian_npy_and_npz(tmp_path):
    X = np.arange(12.0).reshape(3, 4)
    np.save(tmp_path / "f.npy", np.asfortranarray(X))
    np.save(tmp_path / "b.npy", X.astype(">f4"))
    np.savez_compressed(tmp_path / "z.npz", f=np.asfortranarray(X), b=X.astype(">i2"))
    assert np.load(tmp_path / "f.npy").flags.f_contiguous
    for got in (read_features(tmp_path / "f.npy")["f"], read_features(tmp_path / "b.npy")["b"],
                read_features(tmp_path / "z.npz")["f"], read_features(tmp_path / "z.npz")["b"]):
        assert got.dtype == np.float64 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, X)


def test_compressed_npz_of_ordinary_features_is_read(tmp_path):
    X = np.random.default_rng(0).normal(size=(500, 20)).astype(np.float32).astype(np.float64)
    Q = np.round(X * 4)  # few distinct values: compresses well, far below 100 times
    np.savez_compressed(tmp_path / "z.npz", a=X, q=Q, small=np.zeros((10, 20)))
    out = read_features(tmp_path / "z.npz")
    np.testing.assert_array_equal(out["a"], X)
    np.testing.assert_array_equal(out["q"], Q)
    np.testing.assert_array_equal(out["small"], 0.0)  # tiny members: 1 KiB of slack


def test_external_links_in_hdf5_are_not_followed(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["u9"] = GOOD
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["u1"] = GOOD
        f["elsewhere"] = h5py.ExternalLink(str(tmp_path / "other.h5"), "/u9")
        f["soft"] = h5py.SoftLink("/missing")
    assert list(read_features(tmp_path / "x.h5")) == ["u1"]


def test_the_limit_is_configurable_and_checked(tmp_path):
    assert MAX_UTTERANCE_BYTES == 2 * 1024**3
    np.save(tmp_path / "u1.npy", GOOD)
    assert read_features(tmp_path / "u1.npy", max_utterance_bytes=96)["u1"].shape == (4, 3)
    for bad in (0, -1, 1.5, "big", True):
        with pytest.raises(ValueError, match="max_utterance_bytes must be an integer >= 8"):
            read_features(tmp_path / "u1.npy", max_utterance_bytes=bad)


def test_pickles_are_never_loaded(tmp_path):
    """An object array written by numpy itself (a pickle inside) is refused, never unpickled."""
    marker = tmp_path / "pickled"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    array = np.empty((1, 1), dtype=object)
    array[0, 0] = Payload()
    np.save(tmp_path / "u1.npy", array, allow_pickle=True)
    np.savez(tmp_path / "z.npz", a=array)
    for name in ("u1.npy", "z.npz"):
        with pytest.raises(FeatureError, match="dtype object is not numeric"):
            read_features(tmp_path / name)
    assert not marker.exists()


def test_a_pipe_swapped_in_after_the_check_neither_blocks_nor_is_read(tmp_path, monkeypatch,
                                                                     no_hang):
    """The stat before ``open`` can be raced; ``O_NONBLOCK`` and the ``fstat`` after it cannot."""
    import emkit.io.untrusted as untrusted

    os.mkfifo(tmp_path / "p.ark")
    monkeypatch.setattr(untrusted, "check_regular", lambda path, what="", **options: None)
    with pytest.raises(FeatureError, match=r"p.ark is a named pipe, not a regular file"):
        untrusted.open_regular(tmp_path / "p.ark")


# ---------------------------------------------------------------------------------------------
# memory: what a reader allocates follows the file (and the limit), not a header's claims
# ---------------------------------------------------------------------------------------------


def test_a_wide_cm_matrix_builds_no_lookup_table_larger_than_the_data(tmp_path):
    rows, cols = 1, 5000  # 45 kB on disk; 256 lookup values per column would be 25 MB
    path = tmp_path / "wide.ark"
    path.write_bytes(b"u1 \0B" + compressed("CM", 0.0, 1.0, rows, cols, bytes(9 * cols)))
    peak = peak_bytes(lambda: read_features(path))
    assert peak < 4 * 1024**2, peak


def test_a_text_row_is_refused_before_it_is_all_split_or_converted(tmp_path):
    path = tmp_path / "one_line.ark"  # 2 MB: one row of a million values
    path.write_bytes(b"u1 [ " + b"1 " * 1_000_000 + b"]\n")

    def read():
        with pytest.raises(FeatureError, match=r"one_line.ark: utterance 'u1': a 1 x \d+ matrix "
                                               r"\(\d+ bytes as float64\) exceeds "
                                               "max_utterance_bytes=8000"):
            read_features(path, max_utterance_bytes=8000)

    assert peak_bytes(read) < 8 * 1024**2


def test_text_rows_longer_than_a_read_are_read_exactly(tmp_path):
    M = np.random.default_rng(0).normal(size=(2, 20_000))  # rows of ~400 kB of text
    rows = "\n".join(" ".join(repr(float(v)) for v in row) for row in M)
    (tmp_path / "t.ark").write_text(f"u1 [ {rows} ]\nu2 [ 1 2 ] u3 [ 3\t4 ]\n")
    out = read_features(tmp_path / "t.ark")
    np.testing.assert_array_equal(out["u1"], M)
    np.testing.assert_array_equal(out["u2"], [[1, 2]])
    np.testing.assert_array_equal(out["u3"], [[3, 4]])


def test_a_long_hdf5_dataset_name_is_shortened_in_the_message(tmp_path):
    path = tmp_path / "long.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("N" * 100_000, shape=(1000, 1000), dtype="f8")  # nothing stored
    with pytest.raises(FeatureError, match=r"utterance 'NNN.*\.\.\.' declares shape") as info:
        read_features(path)
    assert str(path) in str(info.value) and len(str(info.value)) < len(str(path)) + 300
