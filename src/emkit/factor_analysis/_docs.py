"""Docstring text that ISVMachine and JFAMachine share."""

from __future__ import annotations

#: The Parameters entries of ISVMachine and JFAMachine that read the same, put into their
#: docstrings by :func:`with_shared_parameters`.
SHARED_PARAMETERS = """\
    ubm : GMMMachine or None
        The UBM; trained by ``fit_using_array`` when it is untrained (or None, from ``ubm_kwargs``).
    ubm_kwargs : dict or None
        Arguments of the ``GMMMachine`` created when ``ubm`` is None.
    enroll_iterations : int
        Iterations of the latent-variable updates in ``enroll`` (>= 1).
"""


def with_shared_parameters(doc: str) -> str:
    """A class docstring with :data:`SHARED_PARAMETERS` in place of ``%(shared parameters)s``."""
    return doc.replace("    %(shared parameters)s\n", SHARED_PARAMETERS)
