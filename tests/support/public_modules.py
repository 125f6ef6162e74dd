"""The public modules of emkit: no part of their dotted path starts with ``_``."""

import pkgutil

import emkit


def public_modules() -> list:
    """The dotted names of emkit's public modules and packages, ``emkit`` first."""
    names = ["emkit"]
    for info in pkgutil.walk_packages(emkit.__path__, "emkit."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return names
