"""The speaker labels of an audio data set whose features step left utterances out (the
recipe's ``[features] keep_going``): a data directory's ``utt2spk`` lists every utterance of
its ``wav.scp`` (:func:`emkit.audio.read_data_dir` checks it), so the lines of those left out
are set aside, with a warning, instead of failing as labels of missing features."""

from __future__ import annotations

from .._caller_warnings import warn_at_caller
from ..io.untrusted import show_key


def kept_labels(recipe, name: str, features, utt2spk: dict) -> dict:
    """``utt2spk`` of data set ``name`` without the utterances its features step left out.

    Only with ``keep_going`` and an audio set: an utterance of the set's data directory that is
    not in ``features``.  Any other label without features stays, for the caller's checks.
    """
    audio = recipe["data"][name]["audio"]
    if not recipe["keep_going"] or audio is None:
        return utt2spk
    from ..audio import find_utterances

    listed = {u.id for u in find_utterances([audio], missing_ok=True)}
    left_out = [u for u in utt2spk if u in listed and u not in features]  # in utt2spk's order
    if not left_out:
        return utt2spk
    warn_at_caller(f"{len(left_out)} utterance(s) of data set {show_key(name)} were left out of "
                   "its features ([features] keep_going), so their speaker labels are not used "
                   f"(the first: {show_key(left_out[0])})", UserWarning)
    left_out = set(left_out)
    return {u: s for u, s in utt2spk.items() if u not in left_out}
