"""Evaluation plots render headless to PNG."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from dealscore.training import plots


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def test_every_plot_renders():
    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.3).astype(float)
    preds = {"model": np.clip(y * 0.5 + rng.random(500) * 0.5, 0, 1), "baseline": rng.random(500)}
    figs = [
        plots.calibration_plot(y, preds),
        plots.roc_plot(y, preds, {"model": 0.8, "baseline": None}),
        plots.lift_plot(y, preds),
        plots.importance_plot(pd.Series({"a": 3.0, "b": 1.0, "c": 0.0})),
        plots.confusion_plot([[5, 1], [0, 0]], ["x", "y"], "confusion"),
    ]
    for fig in figs:
        assert _png(fig).startswith(b"\x89PNG")
