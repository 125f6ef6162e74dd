"""Click types of the number options: finite numbers written in ASCII digits only.

Click's ``FLOAT`` and ``FloatRange`` take ``nan``, ``inf`` and ``-inf`` (``float()`` reads them,
and NaN compares false with every bound); a NaN prior, cost or relevance factor then failed deep
in the library, or not at all.  ``float()`` also reads ``1_0`` as 10 and non-ASCII digits as
numbers (``int()`` alike, for the integer options).  These types make all of them usage errors
naming the option.
"""

from __future__ import annotations

import math

import click

__all__ = ["FiniteFloat", "FiniteFloatRange", "POSITIVE", "NON_NEGATIVE", "INT", "IntRange"]


def _written_in_ascii(value, kind: click.ParamType, param, ctx, example="0.5 or 1e-3"):
    if isinstance(value, str) and (not value.isascii() or "_" in value):
        shown = value if len(value) <= 24 else value[:24] + "..."
        kind.fail(f"must be a number written in ASCII digits (e.g. {example}); got "
                  f"{ascii(shown)}", param, ctx)
    return value


def _finite(value: float, kind: click.ParamType, param, ctx) -> float:
    if not math.isfinite(value):
        kind.fail(f"must be a finite number; got {value}", param, ctx)
    return value


class FiniteFloat(click.types.FloatParamType):
    """Any finite float."""

    def convert(self, value, param, ctx):
        value = _written_in_ascii(value, self, param, ctx)
        return _finite(super().convert(value, param, ctx), self, param, ctx)


class FiniteFloatRange(click.FloatRange):
    """A finite float in click's range (bounds and open ends as ``click.FloatRange``)."""

    def convert(self, value, param, ctx):
        value = _written_in_ascii(value, self, param, ctx)
        return _finite(super().convert(value, param, ctx), self, param, ctx)


POSITIVE = FiniteFloatRange(min=0, min_open=True)
NON_NEGATIVE = FiniteFloatRange(min=0)


class _Int(click.types.IntParamType):
    """Any integer written in ASCII digits."""

    def convert(self, value, param, ctx):
        return super().convert(_written_in_ascii(value, self, param, ctx, "8 or 1024"), param, ctx)


class IntRange(click.IntRange):
    """An integer written in ASCII digits, in click's range (as ``click.IntRange``); one out of
    range is named by its first digits and its length, not written out (a message of 4,300
    digits)."""

    def convert(self, value, param, ctx):
        value = _written_in_ascii(value, self, param, ctx, "8 or 1024")
        number = click.types.IntParamType.convert(self, value, param, ctx)
        try:
            return super().convert(number, param, ctx)
        except click.BadParameter:
            if isinstance(number, int) and len(str(number)) > 40:
                from .._describe import describe
                self.fail(f"{describe(number)} is not in the range {self._describe_range()}.",
                          param, ctx)
            raise


INT = _Int()
