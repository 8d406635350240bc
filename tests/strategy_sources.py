"""Strategy files the tests write into temporary folders (discovery reads them from disk)."""

from __future__ import annotations

import textwrap

IMPORT = "import backtrader as bt\n"


def sma_cross(name: str = "SmaCross", *, fast: int = 10, slow: int = 50, grid: dict | None = None) -> str:
    """Source of a moving-average crossover class: long on the cross up, flat on the cross
    down (no import line; prepend :data:`IMPORT`)."""
    return textwrap.dedent(f'''

        class {name}(bt.Strategy):
            params = (("fast", {fast}), ("slow", {slow}))
            grid = {grid or {}!r}

            def __init__(self):
                self.cross = bt.indicators.CrossOver(bt.indicators.SMA(period=self.p.fast),
                                                     bt.indicators.SMA(period=self.p.slow))

            def next(self):
                if not self.position and self.cross > 0:
                    self.buy()
                elif self.position and self.cross < 0:
                    self.close()
        ''')
