"""Fidelity pinned: the screen must keep ranking a fixed batch as its full backtests do.

The batch: four shipped strategy files (two model strategies, two plain ones: 45
configurations) on 20,000 candles of the sample market, seed 11, surrogates forced
(``min_speedup=0``), every configuration backtested in full. Measured when this test was
written (``python -m pytest tests/test_fidelity.py``): Spearman 0.996 over all 45 (0.994 over
the fast paths), 0.997 for the 24 model configurations, 1.000 for the plain ones, top-5 recall
1.00; on seed 12, 0.999 / 0.998 / 0.996 / 1.000. The thresholds below leave room for
floating-point and library drift, not for a screen that ranks worse.
"""

import shutil
from pathlib import Path

import pytest

from distillbt.data.sample import sample_market
from distillbt.screen import screen

ROOT = Path(__file__).resolve().parents[1]
FILES = ("ridge_momentum.py", "logistic_direction.py", "sma_cross.py", "rsi_reversion.py")


@pytest.fixture(scope="module")
def validated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fidelity")
    for name in FILES:
        shutil.copy(ROOT / "strategies" / name, folder)
    return screen(folder, sample_market(bars=20_000, seed=11), top=5, validate=True, progress=False, n_jobs=2,
                  min_speedup=0).summary


def test_the_batch_is_what_the_thresholds_were_measured_on(validated):
    assert validated["configurations"] == validated["validated_configurations"] == 45
    assert validated["model_configurations"] == 24


def test_rank_agreement_over_all_configurations(validated):
    assert validated["spearman"] >= 0.97
    assert validated["spearman_ci90"][0] >= 0.9
    assert validated["topk_recall"] >= 0.8


def test_rank_agreement_of_each_fast_path(validated):
    assert validated["spearman_fast_path"] >= 0.97
    assert validated["paths"]["model"]["spearman"] >= 0.97
    plain = validated["paths"]["plain"]
    # the surrogates' own fidelity: full fallbacks left out (they are exact by construction)
    assert plain["spearman_fast_path_configurations"] >= 12
    assert plain["spearman_fast_path"] >= 0.97
