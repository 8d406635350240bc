"""Examples run as written (the network one against the loopback Bybit server)."""

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
