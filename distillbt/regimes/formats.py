"""The plain-data form labellers are saved in (``to_dict``/``from_dict``): format names and
the conversions to and from JSON-able values."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["RULE_FORMAT", "LEGACY_RULE_FORMAT", "FILTER_FORMAT", "plain", "number_or_none"]

#: Format of a saved :class:`~distillbt.regimes.RuleLabeller`.
RULE_FORMAT = "distillbt.RuleLabeller/1"
#: What the rule labeller was called (and saved as) before the filter became the default.
LEGACY_RULE_FORMAT = "distillbt.TrendVolatilityLabeller/1"
#: Format of a saved :class:`~distillbt.regimes.TrendVolatilityLabeller` (the regime filter).
FILTER_FORMAT = "distillbt.TrendVolatilityLabeller/2"


def plain(value):
    """numpy scalars to Python numbers, so json.dumps accepts them."""
    return value.item() if isinstance(value, np.generic) else value


def number_or_none(value, name: str) -> float | None:
    """A saved threshold back as a float (None stays None); ValueError if it is not a number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"threshold {name} is {value!r}, not a number")
    return float(value)
