"""Messages shared by the numpy i-vector kernels (:mod:`.ivector`) and their array-API
counterparts (:mod:`.ivector_xp`), so that both backends refuse the same statistics alike."""

from __future__ import annotations

#: Why a posterior precision ``I + n T' Sigma^-1 T`` cannot be factorised.
NOT_POSITIVE_DEFINITE = ("a posterior precision matrix is not positive definite: the zeroth-order "
                         "statistics (n) must be non-negative and finite, and not so large that "
                         "the prior's identity is lost in rounding (I + n T' Sigma^-1 T is then "
                         "as ill-conditioned as T' Sigma^-1 T)")
