"""Seeded, deterministic mutations of valid files, and a guard that reads each one in this process.

Used by the compact fuzz tests of the audio, text and training-file readers
(``tests/io/test_fuzz_*.py``); a longer campaign is the same loop with more cases
(``EMKIT_FUZZ_CASES``).  Each case is read under

* a time limit (an interval timer: a reader stuck in Python code is interrupted; see
  :data:`TIME_LIMIT`);
* an allocation bound: the peak of what ``tracemalloc`` sees (numpy's arrays included) during the
  read, at most ``ratio`` times the input's size plus :data:`SLACK`;

and must return a result or raise one of the allowed errors, whose message names the file, stays
short (no line of the file echoed whole) and quotes no run of :data:`ECHO` bytes of the file.
"""

from __future__ import annotations

import os
import random
import signal
import struct
import tracemalloc
from contextlib import contextmanager

CASES = int(os.environ.get("EMKIT_FUZZ_CASES", "0"))
TIME_LIMIT = 10.0  # seconds per read: far above any read here; only a hang reaches it
#: bytes: the interpreter's own objects, modules imported by a first read, fixed read buffers
#: (a calibration file is read with one of 1 MiB, its largest size)
SLACK = 4 * 2**20
MAX_MESSAGE = 400  # characters of a message, besides the paths it names
ECHO = 100  # a run of the file this long quoted in a message is an echo (show_key quotes 80)

SIZES = [0, 1, 3, 7, 0xFFFF, 2**31 - 1, 2**31, 2**32 - 1]  # as 32-bit fields: 2**31 is negative
WEIRD = ["", "\x00", "\t", "\r", "\x1b[2J", "#", "nan", "inf", "-inf", "1e999", "1_0", "\u0661",
         "-1", "0", "target", "TARGET", "=", "--", "x" * 5000, "9" * 5000, "\xa0", "\u2028",
         "\ufeff", "\\", "'", '"', "[", "]", "{", "}", "[[a]]", "true", "-0.0", "../r0.wav",
         "/etc/passwd", "/dev/zero", "|", "cmd |", "-", "a:12", "[" * 2000, '{"a":' * 3000,
         "0x10", "2147483648", "-2147483649", "1" * 4400]


class Hang(BaseException):
    """Raised by the timer in the middle of a read (not an Exception: no reader catches it)."""


@contextmanager
def guarded():
    """Run the reads of a test under the time limit and tracemalloc; yields :func:`read`."""
    def alarm(signum, frame):
        raise Hang()

    previous = signal.signal(signal.SIGALRM, alarm)
    tracemalloc.start()
    try:
        yield read
    finally:
        tracemalloc.stop()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def read(load, path, content: bytes, allowed, *, ratio: float = 2.0, names=None):
    """``load(path)``'s result, or None when it raised one of ``allowed`` properly.

    ``content``: the bytes of the mutated file (for the bounds and the echo check); ``names``:
    what the message must contain one of (default: the file's name).
    """
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT)
    try:
        result, error = load(path), None
    except Hang:
        raise AssertionError(f"the reader hung on {content[:200]!r}") from None
    except allowed as exc:
        result, error = None, exc
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    peak = tracemalloc.get_traced_memory()[1] - before
    assert peak <= ratio * len(content) + SLACK, (peak, len(content), content[:200])
    if error is not None:
        _check_message(error, path, content, names or [os.path.basename(os.fspath(path))])
    return result


def _check_message(error, path, content: bytes, names) -> None:
    message = error.format_message() if hasattr(error, "format_message") else str(error)
    assert any(name in message for name in names), (type(error).__name__, message[:300])
    shown = message
    for name in (os.fspath(path), repr(os.fspath(path))):
        shown = shown.replace(name, "")
    assert len(shown) <= MAX_MESSAGE, (len(shown), message[:300])
    text = content.decode("latin-1")
    for k in range(0, max(0, len(text) - ECHO), 20):
        assert text[k:k + ECHO] not in shown, ("the message echoes the file", message[:300])


# -- mutations -----------------------------------------------------------------------------------
def riff_chunks(data: bytes) -> list:
    """``(name, offset, size)`` of the chunks of a RIFF file, as their headers say."""
    out, p = [], 12
    while p + 8 <= len(data) and len(out) < 64:
        size = struct.unpack("<I", data[p + 4:p + 8])[0]
        out.append((data[p:p + 4], p, size))
        p += 8 + size + (size & 1)
    return out


def _riff_fields(data: bytes) -> list:
    """``(offset, width)`` of the size and format fields of a RIFF/WAVE header."""
    fields = [(4, 4)]
    for name, p, _ in riff_chunks(data):
        fields.append((p + 4, 4))
        if name == b"fmt ":  # tag, channels, rate, byte rate, block align, bits, extension...
            fields += [(p + 8, 2), (p + 10, 2), (p + 12, 4), (p + 16, 4), (p + 20, 2),
                       (p + 22, 2), (p + 24, 2), (p + 26, 2)]
        elif name == b"fact":
            fields.append((p + 8, 4))
    return [(o, w) for o, w in fields if o + w <= len(data)]


def mutate_bytes(r: random.Random, data: bytes, *, riff: bool = False) -> bytes:
    """1-3 of: bit flips, a header byte set, bytes inserted or deleted, a truncation, and for a
    RIFF file a size or format field set to an extreme value, or a chunk repeated."""
    data = bytearray(data)
    for _ in range(r.choice([1, 1, 1, 2, 3])):
        op = r.randrange(8 if riff else 5)
        if op == 0 and data:
            for _ in range(r.randint(1, 8)):
                data[r.randrange(len(data))] ^= 1 << r.randrange(8)
        elif op == 1 and data:
            data[r.randrange(min(len(data), 128))] = r.randrange(256)
        elif op == 2:
            at = r.randrange(len(data) + 1)
            data[at:at] = bytes(r.randrange(256) for _ in range(r.choice([1, 2, 4, 8, 37])))
        elif op == 3 and data:
            at = r.randrange(len(data))
            del data[at:at + r.choice([1, 2, 4, 8, 100])]
        elif op == 4:
            del data[r.randrange(len(data) + 1):]
        elif op in (5, 6) and (fields := _riff_fields(bytes(data))):
            at, width = r.choice(fields)
            value = r.choice(SIZES + [r.randrange(2**32)]) & ((1 << (8 * width)) - 1)
            data[at:at + width] = value.to_bytes(width, "little")
        elif op == 7 and (chunks := riff_chunks(bytes(data))):
            _, p, size = r.choice(chunks)
            piece = bytes(data[p:p + 8 + size + (size & 1)])
            at = r.choice([12, p, p + len(piece), len(data)])
            data[at:at] = piece
    return bytes(data)


def mutate_text(r: random.Random, data: bytes) -> bytes:
    """Byte mutations (a third of the time), else 1-3 of: a line repeated or dropped, a field
    inserted, replaced or extended with an odd token (:data:`WEIRD`), a byte that is not UTF-8
    appended, the blanks of a line changed."""
    if r.random() < 0.35:
        return mutate_bytes(r, data)
    lines = data.split(b"\n")
    for _ in range(r.choice([1, 1, 2, 3])):
        op, i = r.randrange(6), r.randrange(len(lines))
        if op == 0:
            lines.insert(i, lines[r.randrange(len(lines))])
        elif op == 1 and len(lines) > 1:
            del lines[i]
        elif op in (2, 3):
            fields = lines[i].split(b" ")
            token = r.choice(WEIRD).encode()
            j = r.randrange(len(fields))
            if op == 2:
                fields.insert(j, token)
            else:
                fields[j] = r.choice([token, fields[j] + token])
            lines[i] = b" ".join(fields)
        elif op == 4:
            lines[i] += bytes([r.choice([0x80, 0xFF, 0xC3, 0xED])])
        else:
            lines[i] = lines[i].replace(b" ", r.choice([b"\t", b"  ", b"\x0b", b"\xc2\xa0", b""]))
    return b"\n".join(lines)
