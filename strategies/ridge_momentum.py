"""Ridge regression on return lags and moving-average distances (momentum / mean reversion).

Two feature sets, chosen by the ``lookbacks`` param: ``"short"`` (1–4 candle returns and the
16-candle moving-average distance) or ``"long"`` (8–32 candle returns and the 64- and
256-candle distances). ``alpha`` is the ridge penalty on standardised features (distillbt's
convention: a mean loss, so the same alpha means the same shrinkage on 100 distilled points
as on 100k candles). The rule is a symmetric band: long above ``+band``, short below
``-band`` (in standard deviations of the next candle's return) — a param of our own, so it is
listed in ``rule_params``: configurations that differ only in it share one fitted model.
"""

from distillbt.errors import InputError
from distillbt.models import Ridge
from distillbt.strategy import RULE_PARAMS, ModelStrategy
from distillbt.vectorised import positions_from_predictions

LOOKBACKS = {
    "short": ("ret_1", "ret_2", "ret_4", "ma_dist_16"),
    "long": ("ret_8", "ret_16", "ret_32", "ma_dist_64", "ma_dist_256"),
}


class RidgeMomentum(ModelStrategy):
    """Ridge on return lags + moving-average distances; alpha × lookbacks × band grid."""

    params = (("alpha", 0.1), ("lookbacks", "short"), ("band", 0.05))
    grid = {"alpha": [0.01, 0.1, 1.0], "lookbacks": ["short", "long"], "band": [0.05, 0.1]}
    rule_params = RULE_PARAMS + ("band",)
    target = "return"

    def feature_spec(self):
        try:
            names = LOOKBACKS[self.p.lookbacks]
        except KeyError:
            raise InputError(f"lookbacks must be one of {', '.join(LOOKBACKS)}") from None
        return names, {}

    def make_estimator(self):
        return Ridge(alpha=self.p.alpha)

    def position_rule(self, prediction):
        band = self.p.band
        return positions_from_predictions(prediction, long_threshold=band,
                                          short_threshold=-band, allow_short=self.p.allow_short)
