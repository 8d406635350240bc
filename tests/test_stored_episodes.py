"""Distilled episodes stored with a distilled set (``distill --episodes``) and used by the screen."""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from distillbt.cli import main
from distillbt.data.candles import validate_candles
from distillbt.data.sample import sample_market
from distillbt.discovery import discover
from distillbt.distill.artifact import ArtifactError, DistilledSet
from distillbt.distill.episodes import training_episodes
from distillbt.distill.prepare import prepare
from distillbt.distill.runner import distill
from distillbt.errors import InputError
from distillbt.screen import screen
from distillbt.surrogate import screen_plain

from .test_surrogate import STRATEGIES

@pytest.fixture(scope="module")
def market():
    return sample_market(bars=60_000, seed=21)


@pytest.fixture(scope="module")
def early_set(market):
    """A set distilled from the first 30,000 candles, with 3 episodes of its training period."""
    head = market.rows(slice(0, 30_000))
    data = prepare(head)
    dset = distill(data, method="kmedoids", size=10, per_regime=False, seed=0)
    dset.episodes = training_episodes(data, n=3, length=300, warmup=200, seed=1)
    return data, dset


@pytest.fixture(scope="module")
def found(tmp_path_factory):
    """test_surrogate's crossover strategy alone."""
    folder = tmp_path_factory.mktemp("cross")
    (folder / "plain.py").write_text(textwrap.dedent(STRATEGIES))
    everything = discover(folder)
    return replace(everything, strategies=[s for s in everything.strategies if s.name == "Cross"])


def test_episodes_come_from_the_training_period_and_round_trip(early_set, market, tmp_path):
    data, dset = early_set
    eps = dset.episodes
    assert eps.n == 3 and eps.bars == 900 and int(eps.warmup.max()) == 200
    # every stored candle lies at or before the one of the last training row (its target's
    # candle is the next one: still before validation)
    assert eps.time_ns.max() <= pd.Timestamp(data.times[data.parts["train"]][-1]).value
    frame = market.frame
    for i in range(eps.n):
        rows = eps.rows(i)
        at = frame.index.get_indexer(pd.to_datetime(eps.time_ns[rows], utc=True))
        assert (at >= 0).all() and (np.diff(at) == 1).all()  # consecutive real candles
        np.testing.assert_array_equal(eps.ohlcv[rows], frame[["open", "high", "low", "close", "volume"]]
                                      .to_numpy()[at])
    payload = dset.payload_bytes
    back = DistilledSet.load(dset.save(tmp_path / "s.npz"))
    assert back.payload_bytes == payload  # the points' bytes; episodes are counted apart
    assert back.episodes is not None and np.array_equal(back.episodes.ohlcv, eps.ohlcv)
    assert np.array_equal(back.episodes.time_ns, eps.time_ns) and back.episodes.regime_names == eps.regime_names
    header = back.meta["episodes"]
    assert header["n"] == 3 and header["scored_bars"] == 900 and header["bytes"] > eps.ohlcv.nbytes
    # located in other candles: positions by time
    placed = back.episodes.located_in(frame)
    assert np.array_equal(frame.index[placed.source_start].asi8, eps.first_scored_ns())


def test_corrupt_episodes_are_an_artifact_error(early_set, tmp_path):
    _, dset = early_set
    path = dset.save(tmp_path / "s.npz")
    with np.load(path, allow_pickle=False) as z:
        arrays = dict(z)
    arrays["episodes_offsets"] = arrays["episodes_offsets"][:-1]
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(ArtifactError, match="episodes"):
        DistilledSet.load(bad)


def test_the_surrogate_learns_from_given_episodes(early_set, market, found):
    _, dset = early_set
    configs = found.configurations()
    given = (dset.episodes.located_in(market.frame), dset.episodes.n)
    out = screen_plain(configs, market, train=(0, 30_000), screen=(30_000, 48_000), seed=0, progress=False,
                       escalate=False, full_fallback=False, episodes=given)
    assert out.summary["episodes_from"] == "given" and out.summary["base_episodes"] == 3
    assert np.array_equal(out.episodes.ohlcv, dset.episodes.ohlcv)
    assert all(r["path"] == "surrogate" and r["score"] is not None for r in out.records)
    # too little warm-up for a 30-bar SMA (+10): the screen chooses its own episodes and says why
    short = dset.episodes.subset([0, 1, 2])
    short.warmup = np.full(3, 20)
    short.offsets = np.concatenate(([0], np.cumsum(short.warmup + short.length)))
    trimmed = np.concatenate([np.arange(o + 180, o + 500) for o in dset.episodes.offsets[:-1]])
    short.ohlcv, short.time_ns = dset.episodes.ohlcv[trimmed], dset.episodes.time_ns[trimmed]
    again = screen_plain(configs, market, train=(0, 30_000), screen=(30_000, 48_000), seed=0, progress=False,
                         escalate=False, full_fallback=False, episodes=(short.located_in(market.frame), 3))
    assert again.summary["episodes_from"].startswith("selected (the given episodes have 20 warm-up bars")


def test_screen_uses_the_distilled_sets_episodes_and_refuses_leaks(early_set, market, found):
    _, dset = early_set
    result = screen(found, market, distilled=dset, top=1, progress=False)
    assert result.summary["plain_surrogate"]["episodes_from"] == "given"
    # episodes from candles the screen scores on are refused
    late = prepare(market)
    leaky = distill(late, method="random", size=10, per_regime=False, seed=0)
    leaky.episodes = training_episodes(late, n=2, length=300, warmup=200, source_bars=4_000)  # its last candles
    with pytest.raises(InputError, match="episodes reach"):
        screen(found, market, distilled=leaky, top=1, progress=False)
    other = validate_candles(market.frame.iloc[:30_000], symbol="ETH/USDT", source="other",
                             timeframe=market.timeframe, synthetic=True)
    foreign = distill(prepare(other), method="random", size=10, per_regime=False, seed=0)
    foreign.episodes = training_episodes(prepare(other), n=2, length=300, warmup=200)
    with pytest.raises(InputError, match="ETH/USDT"):
        screen(found, market, distilled=foreign, top=1, progress=False)


def test_cli_distill_stores_episodes(tmp_path, capsys):
    out = tmp_path / "e.npz"
    assert main(["distill", "--sample-bars", "20000", "--method", "random", "--size", "10", "--episodes", "2",
                 "--out", str(out), "--no-progress", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["episodes"]["n"] == 2 and summary["episodes"]["warmup"] == 1000
    assert DistilledSet.load(out).episodes.n == 2
    assert main(["distill", "--sample-bars", "20000", "--method", "random", "--size", "10", "--episodes", "2",
                 "--timeframes", "15m,1h", "--out", str(out), "--no-progress"]) == 2
    assert "--episodes" in capsys.readouterr().err
