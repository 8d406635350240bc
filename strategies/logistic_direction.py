"""Logistic regression on the direction of the next candle.

The model estimates the probability that the next candle closes up from return lags,
moving-average distances and the short/long volatility ratio. The rule trades a probability
``edge`` away from a coin flip: long above ``0.5 + edge``, short below ``0.5 - edge`` (flat
in between; long or flat only with ``allow_short=False``). ``alpha`` is the L2 penalty.
"""

from distillbt.models import LogisticRegression
from distillbt.strategy import RULE_PARAMS, ModelStrategy
from distillbt.vectorised import positions_from_predictions


class LogisticDirection(ModelStrategy):
    """Logistic regression on next-candle direction; alpha × edge × allow_short grid."""

    params = (("alpha", 1e-3), ("edge", 0.02))
    grid = {"alpha": [1e-3, 1e-1], "edge": [0.0, 0.02, 0.04], "allow_short": [True, False]}
    rule_params = RULE_PARAMS + ("edge",)
    features = ("ret_1", "ret_2", "ret_4", "ret_8", "ma_dist_16", "ma_dist_64",
                "vol_ratio_16_96")
    target = "direction"

    def make_estimator(self):
        return LogisticRegression(alpha=self.p.alpha)

    def position_rule(self, prediction):
        edge = self.p.edge
        return positions_from_predictions(prediction, long_threshold=0.5 + edge,
                                          short_threshold=0.5 - edge,
                                          allow_short=self.p.allow_short)
