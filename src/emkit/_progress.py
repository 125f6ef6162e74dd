"""Progress of long loops as log lines on the ``emkit`` logger (INFO), at most one every few
seconds: the count done of the total, the rate, the time elapsed and an estimate of the time left.

A tqdm bar (``--progress``, ``emkit.config_context(progress=True)``) is for a terminal; these
lines are for a batch job's log (``emkit -v``, or ``logging`` set up by a Python caller), where a
bar is lost and a line per item would flood it.  Standard library only (``emkit --help`` imports
no numpy).
"""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger("emkit")

#: seconds between two progress lines of one loop
EVERY_SECONDS = 30.0


def monotonic() -> float:
    """The clock of every :class:`Progress` and of the EM loop's timings (tests replace it)."""
    return time.monotonic()


def plural(n: int, word: str) -> str:
    """``1 utterance``, ``2 utterances``, ``2 classes``."""
    return f"{n} {word if n == 1 else plural_form(word)}"


def utterances_written(written: int, listed: int) -> str:
    """The utterances of a features summary: ``3 utterances``, or ``2 of 3 utterances (1 left
    out)`` when keep_going left some of those listed out."""
    if written == listed:
        return plural(written, "utterance")
    return f"{written} of {listed} utterances ({listed - written} left out)"


def plural_form(word: str) -> str:
    """``utterances``, ``classes``: the plural of an English noun, as the units named here."""
    return word + ("es" if word.endswith(("s", "sh", "ch", "x")) else "s")


def format_duration(seconds: float) -> str:
    """``0.42 s``, ``12 s``, ``3m05s``, ``3h12m`` (a negative or non-finite value: ``?``)."""
    if not seconds >= 0 or seconds == float("inf"):
        return "?"
    if seconds < 10:
        return f"{seconds:.2g} s" if seconds < 1 else f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m{int(seconds % 60):02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def in_words(n_bytes: int) -> str:
    """``n_bytes`` in decimal units: '198.2 GB', '950 bytes'."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes} bytes"


def _rate(count: float, seconds: float, unit: str) -> str:
    if seconds <= 0:
        return f"? {plural_form(unit)}/s"
    per_second = count / seconds
    if per_second >= 100:
        return f"{per_second:.0f} {plural_form(unit)}/s"
    if per_second >= 1 or per_second == 0:
        return f"{per_second:.3g} {plural_form(unit)}/s"
    return f"{seconds / count:.3g} s/{unit}"


class Progress:
    """Count the items of a loop of ``total`` ``unit``\\ s and log how far it is, rate-limited.

    ``advance(n)`` after each item or block logs ``"<what>: 1200 of 100000 <unit>s (1.2%), 35.2
    <unit>s/s, 34 s elapsed, about 46m50s left"`` when ``every`` seconds have passed since the
    start or the previous line (never for a loop that ends sooner, nor once all are done: the
    caller's summary or :meth:`finish` says that); ``failed`` counts those that failed (shown
    when any).  ``elapsed`` is the time since the start.

    Parameters
    ----------
    what : str
        The loop's name, the start of each line (``"features"``, ``"statistics"``).
    total : int or None
        How many items there are (None: unknown, no percentage or estimate).
    unit : str
        The items' name in the singular (``"utterance"``).
    every : float
        Seconds between two lines.
    clock : callable, optional
        Seconds of a monotonic clock (default :func:`monotonic`).
    """

    def __init__(self, what: str, total: int | None, unit: str, *,
                 every: float = EVERY_SECONDS, clock=None):
        self.what, self.total, self.unit, self.every = what, total, unit, every
        self._clock = clock or (lambda: monotonic())
        self.start = self._last = self._clock()
        self.done = self.failed = 0
        self._lock = threading.Lock()  # worker threads count their own blocks

    @property
    def elapsed(self) -> float:
        return self._clock() - self.start

    def advance(self, n: int = 1, *, failed: int = 0) -> None:
        with self._lock:
            self.done += n
            self.failed += failed
            if self.total is not None and self.done >= self.total:
                return  # the caller's summary, or finish(), says it
            now = self._clock()
            if now - self._last < self.every or not logger.isEnabledFor(logging.INFO):
                return
            self._last = now
            line = self.line(now - self.start)
        logger.info("%s", line)

    def finish(self) -> None:
        """Log ``"<what>: 100000 <unit>s in 12m30s (133 <unit>s/s)"`` when the loop lasted
        ``every`` seconds or more (a short loop stays silent)."""
        elapsed = self.elapsed
        if elapsed >= self.every:
            failed = f", {self.failed} failed" if self.failed else ""
            logger.info("%s: %s%s in %s (%s)", self.what, plural(self.done, self.unit), failed,
                        format_duration(elapsed), _rate(self.done, elapsed, self.unit))

    def line(self, elapsed: float) -> str:
        of = "" if self.total is None else f" of {self.total}"
        unit = self.unit if (self.done if self.total is None else self.total) == 1 \
            else plural_form(self.unit)
        text = f"{self.what}: {self.done}{of} {unit}"
        if self.total:
            text += f" ({100 * self.done / self.total:.1f}%)"
        if self.failed:
            text += f", {self.failed} failed"
        text += f", {_rate(self.done, elapsed, self.unit)}, {format_duration(elapsed)} elapsed"
        if self.total is not None and 0 < self.done < self.total:
            left = elapsed * (self.total - self.done) / self.done
            text += f", about {format_duration(left)} left"
        return text
