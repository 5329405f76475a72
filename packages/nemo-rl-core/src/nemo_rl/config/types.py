"""Strict number types shared by every config model: finite, in range, never a boolean.

Pydantic's plain `float`/`int` accept `True` as 1, `.inf`/`.nan`, and strings such as "3"; in a
config each of these is a mistake that would surface only later (as a NaN loss, or as an error in
`torch.manual_seed`). These annotated types reject them when the config is loaded, and their bounds
appear in the error messages (`expected float > 0`).

Example:
    >>> from pydantic import TypeAdapter
    >>> TypeAdapter(PositiveFloat).validate_python(3)
    3.0
    >>> [e["type"] for v in (True, float("inf"), 0) for e in _errors(PositiveFloat, v)]
    ['float_type', 'finite_number', 'greater_than']
"""

from __future__ import annotations

from typing import Annotated

from annotated_types import Ge, Gt, Le, Lt
from pydantic import AllowInfNan, Strict

# Strict(): an int is still accepted where a float is expected, but a bool or a string is not.
FiniteFloat = Annotated[float, Strict(), AllowInfNan(False)]
"""A float that is finite (no inf or NaN); an int is accepted, a bool or a string is not."""
PositiveFloat = Annotated[float, Strict(), AllowInfNan(False), Gt(0)]
"""A finite float > 0."""
NonNegativeFloat = Annotated[float, Strict(), AllowInfNan(False), Ge(0)]
"""A finite float >= 0."""
Probability = Annotated[float, Strict(), AllowInfNan(False), Ge(0), Le(1)]
"""A finite float in [0, 1]."""
# Adam's momentum coefficients: torch requires 0 <= beta < 1 (it checks only at optimizer setup).
AdamBeta = Annotated[float, Strict(), AllowInfNan(False), Ge(0), Lt(1)]
"""A finite float in [0, 1): one of Adam's `betas`."""

StrictInt = Annotated[int, Strict()]
"""An int; a bool, a float or a string is refused."""
# Counts and sizes end up in torch and in C code as int64: a larger value would crash there,
# deep in a run, with "Overflow when unpacking long long" (max_num_epochs=2**64 did).
MAX_INT64 = 2**63 - 1
PositiveInt = Annotated[int, Strict(), Gt(0), Le(MAX_INT64)]
"""An int in [1, 2**63 - 1] (never a bool)."""
NonNegativeInt = Annotated[int, Strict(), Ge(0), Le(MAX_INT64)]
"""An int in [0, 2**63 - 1] (never a bool)."""
# torch.manual_seed takes at most 2**64 - 1; the sampler adds the epoch to the seed, so the bound
# leaves room for that.
MAX_SEED = 2**63 - 1
"""The largest seed a config accepts (2**63 - 1)."""
Seed = Annotated[int, Strict(), Ge(0), Le(MAX_SEED)]
"""A random seed: an int in [0, MAX_SEED]."""


def _errors(annotation: object, value: object) -> list[dict]:
    """The pydantic errors of `value` for `annotation` (empty when it is valid); for doctests."""
    from pydantic import TypeAdapter, ValidationError

    try:
        TypeAdapter(annotation).validate_python(value)
    except ValidationError as err:
        return err.errors()
    return []


__all__ = [
    "MAX_SEED",
    "AdamBeta",
    "FiniteFloat",
    "NonNegativeFloat",
    "NonNegativeInt",
    "PositiveFloat",
    "PositiveInt",
    "Probability",
    "Seed",
    "StrictInt",
]
