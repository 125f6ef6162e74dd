"""Small JSON files that emkit reads whole (a recipe's step stamps and ``results.json``).

They are read as the feature readers read theirs (:mod:`emkit.io.untrusted`): a regular file
only, opened without blocking (a named pipe in its place is refused, never waited on), and never
more than the size a file of its kind can have: a larger one is refused, naming the file, before
it is read.  A file that is not UTF-8 JSON is refused the same way, and its bytes never quoted.
"""

from __future__ import annotations

import json

from .untrusted import FeatureError, file_size, open_regular, show_path

#: nothing here is public API: the readers of the recipe runner's small files (internal; their
#: un-underscored names stay importable)
__all__ = []


def read_bounded(path, max_bytes: int, kind: str, *, follow_links: bool = True) -> bytes:
    """The bytes of the regular file ``path``, refused unless at most ``max_bytes``.

    ``kind`` names the file in messages ("step stamp").  A missing file is a
    ``FileNotFoundError``; anything else (not a regular file, a symbolic link when not
    ``follow_links``, too large, grown while read) a :class:`FeatureError` naming it.
    """
    with open_regular(path, follow_links=follow_links) as f:
        size = file_size(f)
        received = f"{size} bytes"
        if size <= max_bytes:  # (read(n) allocates n bytes first: n is the size, not the limit)
            data = f.read(size + 1)
            if len(data) > size:  # grown since fstat: read on, to one byte over the limit
                data += f.read(max_bytes + 1 - len(data))
            if len(data) <= max_bytes:
                return data
            received = f"over {max_bytes} bytes (grown while read)"
    raise FeatureError(f"{show_path(path)}: {received}, more than a {kind} can be ({max_bytes}); "
                       "not read")


def read_json(path, max_bytes: int, kind: str, *, follow_links: bool = True):
    """The JSON value of the file ``path`` (:func:`read_bounded`), which must be UTF-8 text;
    a :class:`FeatureError` naming the file, and where it stops being JSON, otherwise."""
    data = read_bounded(path, max_bytes, kind, follow_links=follow_links)
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise FeatureError(f"{show_path(path)}: not UTF-8 text; not a {kind}") from None
    except json.JSONDecodeError as exc:  # (its msg says what was expected, quoting nothing)
        raise FeatureError(f"{show_path(path)}: not valid JSON ({exc.msg} at line {exc.lineno} "
                           f"column {exc.colno}); not a {kind}") from None
    except RecursionError:
        raise FeatureError(f"{show_path(path)}: JSON nested too deeply; not a {kind}") from None

