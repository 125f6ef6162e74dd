"""Small real data sets embedded in emkit, for examples, tests and the demo.

- :func:`load_japanese_vowels`: UCI Japanese Vowels (9 speakers, 12 LPC cepstra per frame,
  two recording sessions), a miniature speaker-verification corpus.
- :func:`load_old_faithful`: Old Faithful geyser eruptions (272 x 2), the classic
  two-cluster example for Gaussian mixtures.

Both are read from compressed files in ``emkit/datasets/data/`` (see the ``README.md`` there for
sources, licences and how the files were made: ``scripts/extract_*.py`` in the repository).
Every call returns new arrays, so modifying them never affects a later call.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np

from .._describe import describe

__all__ = ["JapaneseVowels", "load_japanese_vowels", "load_old_faithful", "OLD_FAITHFUL_COLUMNS"]

#: Column names of :func:`load_old_faithful`, in order.
OLD_FAITHFUL_COLUMNS = ("eruptions", "waiting")


def _read_npz(name: str) -> dict:
    """All arrays of one of the embedded ``.npz`` files, as a dict."""
    with resources.files(__name__).joinpath("data", name).open("rb") as f:
        with np.load(f, allow_pickle=False) as z:
            return {key: z[key] for key in z.files}


@dataclass(frozen=True, eq=False)
class JapaneseVowels:
    """The UCI Japanese Vowels data: 640 utterances of 9 speakers in two sessions.

    Attributes
    ----------
    utterances : list of ndarray, 640 arrays of shape (n_frames, 12), float64
        One array per utterance, frames in time order, the 12 LPC cepstrum coefficients per
        frame; ``n_frames`` is the utterance's true length (7 to 29, no padding).  The arrays
        are row views of one (9961, 12) array, which :attr:`frames` gives.
    speaker_ids : ndarray of shape (640,), int64
        Speaker of each utterance, 1 to 9.
    sessions : ndarray of shape (640,), int64
        0 for the UCI training part (``ae.train``, 30 utterances per speaker), 1 for the UCI
        test part (``ae.test``, 24 to 88 per speaker), recorded on a different occasion.
    utterance_ids : tuple of str, 640
        Stable names such as ``"spk3_s1_088"`` (speaker, session, 1-based rank within the
        speaker's utterances of that session, in the UCI file order).
    frames : ndarray of shape (9961, 12), float64
        All frames, utterance after utterance (session 0 first, then by speaker).
    offsets : ndarray of shape (641,), int64
        Utterance ``i`` is ``frames[offsets[i]:offsets[i + 1]]``.
    session_names : tuple of str
        ``("train", "test")``: the UCI names of sessions 0 and 1.
    """

    utterances: list
    speaker_ids: np.ndarray
    sessions: np.ndarray
    utterance_ids: tuple
    frames: np.ndarray
    offsets: np.ndarray
    session_names: tuple = ("train", "test")

    @property
    def n_utterances(self) -> int:
        """Number of utterances (640)."""
        return len(self.utterances)

    def indices(self, *, session=None, speaker=None) -> np.ndarray:
        """Indices of the utterances of one session and/or one speaker.

        Parameters
        ----------
        session : {0, 1, "train", "test"} or None
            None: both sessions.
        speaker : int from 1 to 9, or None
            None: every speaker.

        Returns
        -------
        ndarray of shape (n_selected,), int64
            Ascending.

        Raises
        ------
        ValueError
            Another session or speaker.
        """
        keep = np.ones(self.n_utterances, dtype=bool)
        if session is not None:
            if isinstance(session, str):
                if session not in self.session_names:
                    raise ValueError(f"session must be one of {self.session_names}, 0 or 1; "
                                     f"got {describe(session)}")
                session = self.session_names.index(session)
            if session not in (0, 1):
                raise ValueError(f"session must be 0, 1, 'train' or 'test'; "
                                 f"got {describe(session)}")
            keep &= self.sessions == session
        if speaker is not None:
            if speaker not in range(1, 10):
                raise ValueError(f"speaker must be an integer from 1 to 9; got {describe(speaker)}")
            keep &= self.speaker_ids == speaker
        return np.flatnonzero(keep)


def load_japanese_vowels() -> JapaneseVowels:
    """Load the UCI Japanese Vowels data set (640 utterances, 9 speakers, 2 sessions).

    Nine male Japanese speakers uttered the vowels /ae/ in succession; each utterance was
    analysed into frames of 12 LPC cepstrum coefficients (12-degree linear prediction,
    sampling rate 10 kHz, frame length 25.6 ms, shift 6.4 ms).  The training part (270
    utterances, 30 per speaker) and the test part (370 utterances: 31, 35, 88, 44, 29, 24, 40,
    50 and 29 for speakers 1 to 9) were recorded on different occasions, which makes them two
    sessions: enrol on one, probe with the other.  Utterances have 7 to 29 frames, 9961 frames
    in all.  Values are those of the UCI files (six decimals) exactly.

    Source: M. Kudo, J. Toyama and M. Shimbo (1999), "Japanese Vowels" [data set], UCI Machine
    Learning Repository, https://doi.org/10.24432/C5NS47, licensed under CC BY 4.0
    (https://creativecommons.org/licenses/by/4.0/).  Described in M. Kudo, J. Toyama and
    M. Shimbo, "Multidimensional curve classification using passing-through regions", Pattern
    Recognition Letters 20(11-13):1103-1111, 1999.  emkit stores the values as integer
    millionths in a compressed ``.npz`` (made from the copy in the aeon 1.6.0 wheel by
    ``scripts/extract_japanese_vowels.py``); no value is changed.

    Returns
    -------
    JapaneseVowels
        ``utterances`` (list of (n_frames, 12) float64 arrays), ``speaker_ids`` (640,),
        ``sessions`` (640,), ``utterance_ids``, ``frames`` (9961, 12), ``offsets`` (641,); see
        :class:`JapaneseVowels`.

    Examples
    --------
    >>> jv = load_japanese_vowels()
    >>> enroll = jv.indices(session="train", speaker=1)
    >>> [jv.utterances[i].shape[1] for i in enroll[:2]]
    [12, 12]
    """
    z = _read_npz("japanese_vowels.npz")
    frames = z["frames_e6"].astype(np.float64) / 1e6  # exact: see the extraction script
    offsets = z["offsets"].astype(np.int64)
    speakers = z["speaker"].astype(np.int64)
    sessions = z["session"].astype(np.int64)
    utterances = [frames[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
    ids, rank = [], {}
    for spk, ses in zip(speakers.tolist(), sessions.tolist()):
        rank[spk, ses] = rank.get((spk, ses), 0) + 1
        ids.append(f"spk{spk}_s{ses}_{rank[spk, ses]:03d}")
    return JapaneseVowels(utterances=utterances, speaker_ids=speakers, sessions=sessions,
                          utterance_ids=tuple(ids), frames=frames, offsets=offsets)


def load_old_faithful() -> np.ndarray:
    """Load the Old Faithful geyser data: 272 eruptions, as a (272, 2) float64 array.

    Columns (:data:`OLD_FAITHFUL_COLUMNS`): ``eruptions``, the eruption duration in minutes
    (1.6 to 5.1), and ``waiting``, the waiting time to the next eruption in minutes (43 to 96).
    Two well-separated clusters: the standard small example for a two-component Gaussian
    mixture.

    Source: R's ``datasets::faithful`` (W. Härdle, *Smoothing Techniques with Implementation
    in S*, Springer, 1991), a version of the data of A. Azzalini and A. W. Bowman, "A look at
    some data on the Old Faithful geyser", Applied Statistics 39:357-365, 1990.  Extracted
    from the copy in the plotnine 0.15.9 wheel (``plotnine/data/faithful.csv``) by
    ``scripts/extract_old_faithful.py``; identical to R's values.

    Returns
    -------
    ndarray of shape (272, 2), float64
    """
    return np.array(_read_npz("old_faithful.npz")["data"], dtype=np.float64)
