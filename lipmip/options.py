"""Validation of the keyword options that methods take, with errors naming the option."""

from __future__ import annotations

from typing import Any

import numpy as np

from lipmip.errors import InvalidQueryError

__all__ = ["check_count"]


def check_count(value: Any, name: str, minimum: int) -> int:
    """``value`` as an int ``>= minimum``, or :class:`InvalidQueryError` naming ``name``
    (booleans and floats are refused, even integral ones)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidQueryError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
