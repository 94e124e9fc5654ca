"""Fan charts: cumulative bookings from the forecast time, median line and P10–P90 / P25–P75 bands.

Drawn with matplotlib's object API (no global pyplot state), so the CLI, the
backtest's MLflow run and the service's page all get the same picture.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from dealscore.forecast.engine import COMPANY, Forecast


def fan_chart(forecast: Forecast, groups: Sequence[str] | None = None, *, max_panels: int = 9) -> Figure:
    """One panel per group (company first): cumulative bookings through the end of each month."""
    fan = forecast.fan
    names = list(groups) if groups is not None else [COMPANY, *[g for g in dict.fromkeys(fan["group"])
                                                                 if g != COMPANY]]
    names = names[:max_panels]
    cols = min(3, len(names))
    rows = int(np.ceil(len(names) / cols))
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, name in zip(axes, names, strict=False):
        sub = fan[fan["group"] == name]
        x = np.arange(len(sub))
        ax.fill_between(x, sub["q10"], sub["q90"], alpha=0.25, color="tab:blue", label="P10–P90")
        ax.fill_between(x, sub["q25"], sub["q75"], alpha=0.35, color="tab:blue", label="P25–P75")
        ax.plot(x, sub["q50"], color="tab:blue", lw=2, label="median")
        ax.set_xticks(x, [m[2:] for m in sub["month"]], fontsize=7, rotation=30)
        ax.set_title(name, fontsize=9)
        ax.yaxis.set_major_formatter(lambda v, _: _money(v))
        ax.tick_params(axis="y", labelsize=7)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"Cumulative bookings since {forecast.periods[0].label} began, through each month end "
                 f"(booked + forecast as of {forecast.as_of:%Y-%m-%d}; {forecast.n_sims:,} draws)", fontsize=10)
    return fig


def _money(v: float) -> str:
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.1f}M"
    if a >= 1e3:
        return f"{v / 1e3:.0f}k"
    return f"{v:.0f}"


__all__ = ["fan_chart"]
