"""What to compute features of: audio files, directories of them, Kaldi data directories (see
:func:`find_utterances` and :func:`read_data_dir`)."""

from __future__ import annotations

import dataclasses
import math
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ..io._message_text import PATH_TAIL
from ..io.lists import read_id_map
from ..io.untrusted import ASCII_NUMBER, FeatureError, show_key, show_path, text_lines
from ._read import MAX_CHANNELS, AudioError

__all__ = ["Utterance", "find_utterances", "read_data_dir", "AUDIO_SUFFIXES"]

AUDIO_SUFFIXES = (".wav", ".flac")
_BLANKS = " \t\r\n\f\v"  # Kaldi splits its lists on ASCII white space only (not U+00A0)
_FIELDS = re.compile(f"[{_BLANKS}]+")


@dataclass(frozen=True)
class Utterance:
    """One utterance: an audio file, or a segment of one, and its speaker.

    Parameters
    ----------
    id : str
        The utterance id (a Kaldi id: unique, no white space, usable as a file name).
    path : str
        The audio file.
    start, end : float or None
        The segment, in seconds (None: the whole file; ``end`` None: to its end).
    speaker : str or None
        From ``utt2spk``, when known.
    origin : str or None
        Where it is listed (a ``wav.scp`` or ``segments`` line), for messages; None for an
        audio file given or found in a directory.
    channel : int or None
        The channel of the recording the utterance is (a ``segments`` line's fifth field, from
        0); None: the one of the feature configuration (``FeatureConfig.channel``).
    looked_for : str
        Where a missing audio file of a ``wav.scp`` was looked for (a relative path: from the
        current directory, then from the data directory), for the message of its reading; ``""``
        for a file found (``find_utterances(missing_ok=True)`` lists missing ones).
    """

    id: str
    path: str
    start: float | None = None
    end: float | None = None
    speaker: str | None = None
    origin: str | None = None
    channel: int | None = None
    looked_for: str = ""


def _lines(path: Path):
    """The non-blank lines of a Kaldi data-directory list, each read with at most 64 kB (a file
    of one endless line is refused before it is read whole).  Kaldi has no comments in these
    lists: a line starting with ``#`` is an entry (whose id :func:`_check_id` refuses)."""
    try:
        for number, line in text_lines(path, 65536, "Kaldi data-directory list"):
            text = line.strip(_BLANKS)
            if text:
                yield number, text
    except FeatureError as exc:  # (AudioError is what audio inputs raise)
        message, raw = str(exc), os.fspath(path)
        if message.startswith(f"{raw} line "):  # the list's path, shown escaped
            message = show_path(path) + message[len(raw):]
        raise AudioError(message) from None


#: Why an id may not start with '#' (a line of wav.scp or segments is never a comment in Kaldi)
_HASH = ("Kaldi reads every line of wav.scp and segments as an entry (they have no comments), "
         "and emkit's lists (feats.scp, utt2spk, trials) refuse an id starting with '#' (their "
         "comments are '# text' lines), so such an id could not be used; remove the line or "
         "rename the id")


def _check_id(key: str, where: str, what: str) -> str:
    """``key`` if printable and not starting with ``#``; else an error: the ark key it would
    become is refused by emkit's readers (and by Kaldi's, for white space), a control character
    would reach terminals, and emkit's lists refuse an id starting with ``#``."""
    if not key.isprintable():
        raise AudioError(f"{where}: the {what} {show_key(key)} contains a control or other "
                         "non-printable character; ids must be printable text")
    if key.startswith("#"):
        raise AudioError(f"{where}: the {what} {show_key(key)} starts with '#': {_HASH}")
    return key


def _wav_scp(data_dir: Path, missing_ok: bool) -> dict:
    """``{recording id: (audio path, "wav.scp line N", where it was looked for)}`` of
    ``data_dir``'s wav.scp (a missing file's path as written, with ``missing_ok``; the last is
    ``""`` for a file found)."""
    scp = data_dir / "wav.scp"
    out = {}
    for number, line in _lines(scp):
        where = f"{show_path(scp)} line {number}"
        parts = _FIELDS.split(line, maxsplit=1)
        if len(parts) != 2:
            raise AudioError(f"{where}: expected 'recording-id path'; got {len(parts)} field(s)")
        key, target = _check_id(parts[0], where, "recording id"), parts[1]
        if target.endswith("|") or target.startswith("|") or target == "-":
            raise AudioError(f"{where}: recording {show_key(key)} is a piped command or standard "
                             "input; emkit never runs commands: convert the audio to WAV/FLAC "
                             "files and list their paths")
        if key in out:
            raise AudioError(f"{where}: recording {show_key(key)} is listed twice")
        path, looked_for = _resolve(target, data_dir, where, missing_ok)
        out[key] = (path, where, looked_for)
    if not out:
        raise AudioError(f"{show_path(scp)}: lists no recording")
    return out


def _resolve(target: str, data_dir: Path, where: str, missing_ok: bool = False) -> tuple:
    """``(path, "")``: a relative path from the current directory, as Kaldi does, else from the
    data directory (the rule of feature scp files, :mod:`emkit.io.kaldi`); a missing file is an
    error, or with ``missing_ok`` ``(its path as written, where it was looked for)``, whose
    reading fails (an utterance to leave out)."""
    for candidate in (Path(target), data_dir / target):
        try:
            if candidate.is_file():
                return os.fspath(candidate), ""
        except OSError:  # a name too long for the file system: no such file
            continue
    if ":" in target and not os.path.exists(target):
        raise AudioError(f"{where}: {show_path(target, tail=PATH_TAIL)}: archive offsets "
                         "(path:offset) are not supported; list plain audio files")
    if missing_ok:
        return target, _where_looked(target, data_dir)
    raise FileNotFoundError(f"{where}: no such audio file {show_path(target, tail=PATH_TAIL)}"
                            f"{_where_looked(target, data_dir)}")


def _where_looked(target: str, data_dir: Path) -> str:
    """Where a relative path of wav.scp was looked for, for the message saying it is not there:
    the current directory may not be the one its author ran from (a recipe run from another)."""
    if os.path.isabs(target):
        return ""
    try:
        cwd = f", {show_path(os.getcwd())}"
    except OSError:  # the current directory was removed
        cwd = ""
    return (f" (a relative path is looked for from the current directory{cwd}, then from the "
            f"data directory, {show_path(data_dir)})")


def _seconds(text: str, where: str) -> float:
    """A time of a segments line: a plain decimal number (as Kaldi reads it), finite."""
    value = float(text) if ASCII_NUMBER.fullmatch(text) else math.nan
    if not math.isfinite(value):
        raise AudioError(f"{where}: start and end must be finite numbers of seconds; got "
                         f"{show_key(text)}")
    return value


def _channel(text: str, where: str) -> int:
    """The fifth field of a segments line: the segment's channel, a plain decimal integer from 0
    (0 the left, 1 the right channel of a stereo recording), as Kaldi's extract-segments reads
    it (which skips, with a warning, a line whose field is not such a number)."""
    # at most 4 digits: MAX_CHANNELS is 1024, and int() refuses a string of over 4300 digits
    if not re.fullmatch("[0-9]{1,4}", text) or int(text) >= MAX_CHANNELS:
        raise AudioError(f"{where}: the fifth field, the channel of the segment, must be a "
                         f"channel number from 0 (the first, left) to {MAX_CHANNELS - 1}; got "
                         f"{show_key(text)}")
    return int(text)


def _segments(path: Path, recordings: dict) -> list:
    out, lines = [], {}
    for number, line in _lines(path):
        where = f"{show_path(path)} line {number}"
        fields = _FIELDS.split(line)
        if len(fields) not in (4, 5):
            raise AudioError(f"{where}: expected 'utterance-id recording-id start end', and "
                             f"optionally the channel; got {len(fields)} field(s)")
        utt, rec = _check_id(fields[0], where, "utterance id"), fields[1]
        start, end = _seconds(fields[2], where), _seconds(fields[3], where)
        if rec not in recordings:
            raise AudioError(f"{where}: recording {show_key(rec)} is not in wav.scp")
        if start < 0 or (end != -1 and end <= start):
            raise AudioError(f"{where}: need 0 <= start < end, or end -1 for the end of the "
                             f"recording; got start {fields[2]} and end {fields[3]}")
        if utt in lines:
            raise AudioError(f"{where}: utterance {show_key(utt)} is listed twice (lines "
                             f"{lines[utt]} and {number})")
        lines[utt] = number
        channel = _channel(fields[4], where) if len(fields) == 5 else None
        audio, _, looked_for = recordings[rec]
        out.append(Utterance(utt, audio, start, None if end == -1 else end, origin=where,
                             channel=channel, looked_for=looked_for))
    if not out:
        raise AudioError(f"{show_path(path)}: lists no segment")
    return out


def read_data_dir(data_dir, *, missing_ok: bool = False) -> list:
    """The utterances of a Kaldi data directory (one holding ``wav.scp``), in file order.

    ``wav.scp`` lines are ``recording-id path``; the optional ``segments`` (``utterance-id
    recording-id start end [channel]``, seconds as plain finite decimal numbers, ``end`` -1 for
    the end of the recording) cuts utterances out of the recordings; its optional fifth field,
    as in Kaldi's ``extract-segments``, is the channel of the segment (from 0: 0 the left, 1 the
    right side of a stereo telephone call), which overrides the configuration's channel for
    that utterance; fields are separated by ASCII white
    space, as in Kaldi; the optional ``utt2spk`` gives their speakers and must list every
    utterance.  Relative paths are taken from the current directory, as Kaldi does, and where
    no such file is there, from the data directory.  Utterance ids must be unique, usable as
    file names (no ``/``, not starting with ``.``) and without white space (a Kaldi id).

    Parameters
    ----------
    data_dir : str or path-like
        A directory holding ``wav.scp``.
    missing_ok : bool, default False
        A ``wav.scp`` entry whose audio file does not exist gives its utterances all the same,
        with the path as written, for :func:`extract_many` to leave out (``keep_going``) rather
        than a ``FileNotFoundError`` here.

    Returns
    -------
    list of Utterance

    Raises
    ------
    AudioError
        A malformed list, a repeated or unsafe id, a piped command (``cmd |``) or an archive
        offset (refused, never executed).
    FileNotFoundError
        A listed audio file that does not exist (unless ``missing_ok``).
    """
    data_dir = Path(data_dir)
    recordings = _wav_scp(data_dir, missing_ok)
    if (data_dir / "segments").is_file():
        utterances = _segments(data_dir / "segments", recordings)
    else:
        # the line is named by errors: the utterance's id need not be its file's name
        utterances = [Utterance(key, path, origin=where, looked_for=looked_for)
                      for key, (path, where, looked_for) in recordings.items()]
    if (data_dir / "utt2spk").is_file():
        speakers = read_id_map(data_dir / "utt2spk")
        missing = [u.id for u in utterances if u.id not in speakers]
        if missing:
            raise AudioError(f"{show_path(data_dir / 'utt2spk')}: utterance "
                             f"{show_key(missing[0])} has no speaker "
                             f"({len(missing)} of {len(utterances)} utterances are missing)"
                             f"{_other_unicode_form(missing[0], speakers)}")
        utterances = [dataclasses.replace(u, speaker=speakers[u.id]) for u in utterances]
    return utterances


def _other_unicode_form(key: str, listed) -> str:
    """What to say when ``listed`` has ``key`` written with other code points (é as one, or as
    e and a combining accent, as macOS writes file names): the two look the same in a message,
    which would otherwise say that an id shown in the file is missing from it."""
    same_text = unicodedata.normalize("NFC", key)
    for other in listed:
        if other != key and unicodedata.normalize("NFC", other) == same_text:
            return (f"; utt2spk has {_escaped(other)} for {_escaped(key)}, "
                    "the same text in other Unicode code points: ids must match code point for "
                    "code point, so write both lists in one Unicode normalization form (NFC)")
    return ""


def _escaped(key: str) -> str:
    """An id as :func:`show_key` shows it, its non-ASCII characters as escapes (``'e\\u0301'``)."""
    return ascii(key if len(key) <= 80 else key[:77] + "...")


def _scan(directory: Path) -> list:
    files = sorted(p for p in directory.rglob("*")
                   if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not files:
        raise AudioError(f"{show_path(directory)}: no .wav or .flac file in this directory (nor wav.scp)")
    return [Utterance(p.stem, os.fspath(p)) for p in files]


#: The files of a Kaldi data directory, given by mistake where audio is expected
_DATA_DIR_FILES = ("wav.scp", "segments", "utt2spk", "spk2utt", "feats.scp", "text")


def find_utterances(inputs, *, missing_ok: bool = False) -> list:
    """The utterances of audio files, directories and Kaldi data directories, in order.

    Utterance ids must be unique, usable as file names (no ``/``, not starting with ``.``) and
    without white space.

    Parameters
    ----------
    inputs : str or path-like, or a list of them
        A file (``.wav``, ``.flac`` or anything libsndfile reads) is one utterance named after
        the file (``spk1_utt3.wav`` -> ``spk1_utt3``); a directory without ``wav.scp``, every
        ``.wav``/``.flac`` file under it (recursively, sorted); a Kaldi data directory, the
        utterances :func:`read_data_dir` reads.
    missing_ok : bool, default False
        Passed to :func:`read_data_dir`: a data directory's missing audio files give their
        utterances, whose reading fails (to be left out), not an error here.

    Returns
    -------
    list of Utterance

    Raises
    ------
    FileNotFoundError
        A missing input (an audio file of a data directory: unless ``missing_ok``).
    AudioError
        An unusable input, or a repeated or unsafe utterance id.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    found, origin = [], {}
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            batch = read_data_dir(p, missing_ok=missing_ok) if (p / "wav.scp").is_file() \
                else _scan(p)
        elif p.is_file() and p.name in _DATA_DIR_FILES:
            raise AudioError(f"{show_path(item)}: a Kaldi data directory's list, not audio: give the "
                             f"data directory ({show_path(p.parent)})")
        elif p.is_file():
            batch = [Utterance(p.stem, os.fspath(p))]
        else:
            raise FileNotFoundError(f"no such audio file or directory: {show_path(item)}")
        for u in batch:
            if "/" in u.id or "\\" in u.id or u.id.startswith(".") or not u.id:
                raise AudioError(f"{show_path(u.path)}: utterance id {show_key(u.id)} cannot name a file (no '/', "
                                 "'\\' or leading '.')")
            shown = show_path(u.path, tail=PATH_TAIL)
            if u.id.startswith("#"):
                raise AudioError(f"audio file {shown}: its utterance id {show_key(u.id)} starts with "
                                 "'#', which emkit's lists (feats.scp, utt2spk, trials) refuse in "
                                 "an id; rename the file")
            if any(c.isspace() for c in u.id):
                raise AudioError(f"audio file {shown}: its utterance id {show_key(u.id)} contains "
                                 "white space, which Kaldi ids cannot contain; rename the file")
            if not u.id.isprintable():
                raise AudioError(f"audio file {shown}: its utterance id {show_key(u.id)} contains "
                                 "a control or other non-printable character, which an ark key "
                                 "cannot hold; rename the file")
            if u.id in origin:
                first, second = (show_path(v.path) if v.origin is None else v.origin
                                 for v in (origin[u.id], u))
                if first == second:
                    twice = ("given twice" if u.origin is None
                             else "read twice: its data directory is given twice")
                    raise AudioError(f"utterance {show_key(u.id)} is listed twice: {first} is "
                                     f"{twice}")
                advice = "" if u.origin is not None else (
                    "; a file's utterance is named after the file's stem: rename the files, or "
                    "list them in a Kaldi data directory (wav.scp) with ids of your own")
                raise AudioError(f"utterance {show_key(u.id)} comes from both {first} and "
                                 f"{second}{advice}")
            origin[u.id] = u
            found.append(u)
    if not found:
        raise AudioError("no audio input given")
    return found
