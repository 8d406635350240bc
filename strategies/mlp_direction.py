"""A small neural network (one tanh hidden layer) on the direction of the next candle.

The network is trained full batch to convergence (300 Adam steps, weight penalty 1e-3) on any
number of rows — a few hundred distilled points or a long real training period alike. Why not
one pass of mini-batches over the real rows: on a weak signal, a network trained that way ends
wherever its random initialisation and batch order take it, so the same configuration's full
backtest changed with the seed as much as between configurations, and no screen (nor the full
backtest itself) could rank such configurations. Full batch, the fit is the penalised optimum
and stable. Long above ``long_threshold``, short below ``short_threshold`` (probabilities of an
up candle).
"""

from distillbt.models import MLP
from distillbt.strategy import ModelStrategy


def converged_mlp(*, hidden: int, random_state: int = 0) -> MLP:
    """The MLP classifier both fits use: full batch, 300 steps, α = 1e-3."""
    return MLP(task="classification", hidden=hidden, alpha=1e-3, learning_rate=0.01, epochs=300,
               batch_size=None, random_state=random_state)


class MLPDirection(ModelStrategy):
    """One-hidden-layer network on next-candle direction; hidden × threshold grid."""

    params = (("hidden", 8), ("long_threshold", 0.52), ("short_threshold", 0.48))
    grid = {"hidden": [4, 16], "long_threshold": [0.52, 0.55], "short_threshold": [0.48, 0.45]}
    features = ("ret_1", "ret_2", "ret_4", "ret_8", "ma_dist_16", "ma_dist_64",
                "vol_ratio_16_96", "volume_z_16", "hl_range")
    target = "direction"

    def make_estimator(self):
        return converged_mlp(hidden=self.p.hidden)
