"""Market regimes: causal labellers fitted on the training period, and how to score them.

A regime labeller names every candle one of :data:`REGIME_NAMES` (``bull bear sideways
volatile crash``). ``fit`` sees the training candles only; ``predict`` is causal — the label
of a candle depends on it and earlier candles alone — and leaves a warm-up unlabelled (NaN)::

    labeller = TrendVolatilityLabeller().fit(candles_train)      # training candles only
    labels = labeller.predict(candles)                           # causal, one per candle
    spec = labeller.to_dict()                                     # JSON-able, for the artifact
    same = TrendVolatilityLabeller.from_dict(spec)
    regime_agreement(candles.true_regimes, labels)                # sample market only

- :class:`TrendVolatilityLabeller` (:mod:`.hmm`), the default: a regime HMM filtered forward;
- :class:`RuleLabeller` (:mod:`.rules`): trend × volatility rules, the earlier default, which
  starts the HMM's EM;
- :func:`regime_agreement` (:mod:`.scoring`): agreement with known regimes.

Models, measurements and design choices: ``docs/regimes.md``.
"""

from __future__ import annotations

from .hmm import TrendVolatilityLabeller
from .names import REGIME_NAMES
from .rules import MIN_FIT_ROWS, RuleLabeller  # noqa: F401 - MIN_FIT_ROWS: not in __all__
from .scoring import regime_agreement

__all__ = ["REGIME_NAMES", "RuleLabeller", "TrendVolatilityLabeller", "regime_agreement"]
