"""Examples run as written, with small arguments (the network one against the loopback Bybit
server); each asserts what the example promises to print and write."""

import json
import re
import subprocess
import sys
from pathlib import Path

from distillbt.data.fetch import to_ms

from .bybit_server import BybitV5Server, make_candles

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(script, *args, cwd):
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_sample_market_example(tmp_path):
    result = run("sample_market.py", "--bars", "20000", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "reloads as 20000 valid candles" in result.stdout
    assert (tmp_path / "sample.parquet").exists()


def test_fetch_bybit_example_against_a_mirror(tmp_path):
    start, step = to_ms("2024-01-01"), 3_600_000
    with BybitV5Server(now_ms=start + 1500 * step) as server:
        server.add_candles("linear", "BTCUSDT", "60", make_candles(start, 1500, step))
        result = run("fetch_bybit.py", "--api-url", server.url, "--cache-dir", str(tmp_path / "cache"),
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "fetched 1500 new candles" in result.stdout
    cache_file = next(line for line in result.stdout.splitlines() if line.endswith(".parquet"))
    assert Path(cache_file).is_file()
    assert f"next: python -m distillbt data check bybit:BTC/USDT:USDT:1h --cache-dir {tmp_path / 'cache'}" \
        in result.stdout


def test_fetch_bybit_example_refuses_an_unknown_symbol_in_one_line(tmp_path):
    start = to_ms("2024-01-01")
    with BybitV5Server(now_ms=start + 100 * 3_600_000) as server:
        result = run("fetch_bybit.py", "--api-url", server.url, "--symbol", "NOPE/USDT:USDT",
                     "--cache-dir", str(tmp_path / "cache"), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("fetch refused:") and len(result.stderr.strip().splitlines()) == 1


# -- the examples of issue 6, on small samples so that they stay quick ---------------------------
def test_quickstart_example_screens_and_writes_a_report(tmp_path):
    out = tmp_path / "report"
    result = run("quickstart.py", str(out), "--bars", "6000", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "SYNTHETIC" in text and "distilled (regression): exact-linear" in text
    # the ranked table: every configuration of ridge_momentum.py (12) and sma_cross.py (9)
    assert "rank  survivor  configuration" in text
    assert text.count("RidgeMomentum(") >= 12 and text.count("SmaCross(") >= 9
    # the trust figures
    for figure in ("Spearman", "top-5 recall", "vectorised vs Backtrader", "survivors", "x the screen",
                   "model strategies:", "before survivors"):
        assert figure in text, figure
    assert len([line for line in text.splitlines() if line.startswith("  ") and "holdout score" in line]) == 5
    # the report, at the path printed last
    assert text.strip().splitlines()[-1] == f"report: {(out / 'index.html').resolve()}"
    page = (out / "index.html").read_text()
    for name in ("screen_vs_full.png", "equity.png", "regimes.png", "time_spent.png"):
        assert (out / name).stat().st_size > 10_000, name
        assert name in page, name
    assert (out / "summary.md").read_text().startswith("# ")
    saved = json.loads((out / "screen.json").read_text())
    assert len(saved["records"]) == 21 and sum(r["survivor"] for r in saved["records"]) == 5


def test_model_strategy_example_fits_both_ways_and_executions_agree(tmp_path):
    result = run("model_strategy.py", "--bars", "8000", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "strategy TrendRidge: 8 configurations" in text
    # ridge on exact-linear points equals ridge on the same real training rows
    fits = [line for line in text.splitlines() if line.startswith("fit {'model': 'ridge'")]
    assert len(fits) == 2
    for line in fits:
        gap = float(re.search(r"differ by (\S+) \(relative\) from the fit on the same", line).group(1))
        assert gap < 1e-9, line
    # one row per configuration; vectorised and Backtrader final values agree
    rows = [line.split() for line in text.splitlines() if line.startswith("model=")]
    assert len(rows) == 8
    for row in rows:
        vectorised, backtrader, diff = float(row[4].replace(",", "")), float(row[5].replace(",", "")), float(row[6])
        assert diff < 1e-9 and abs(vectorised - backtrader) <= 1e-6 * backtrader, row
    assert "(agree)" in text


def test_distill_and_evaluate_example_saves_reloads_and_evaluates(tmp_path):
    from distillbt.distill.artifact import DistilledSet

    out = tmp_path / "sets" / "gradient.npz"
    result = run("distill_and_evaluate.py", "--bars", "6000", "--eval-bars", "6000", "--size", "10",
                 "--seeds", "2", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    loaded = DistilledSet.load(out)
    assert loaded.meta["method"] == "gradient" and loaded.size == 10
    header = json.loads(out.with_suffix(".json").read_text())
    assert header["feature_names"] == loaded.meta["feature_names"] and header["seed"] == 0
    assert f"{loaded.compression_ratio:,.0f}x" in text and "compression:" in text
    table = [line.split()[0] for line in text.splitlines() if re.match(r"(gradient|random|full)\s+\d+\s", line)]
    assert table == ["gradient", "random", "full"]
    assert "logistic ic" in text and text.strip().splitlines()[-1] == str(out)
