"""Evaluation plots, logged as MLflow artifacts.

Built with matplotlib's object API (``Figure`` without pyplot), so they render
headless on any backend and never open a window or touch global state.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve


def calibration_plot(y: np.ndarray, preds: Mapping[str, np.ndarray], n_bins: int = 10) -> Figure:
    """Reliability diagram: observed win rate against mean predicted probability per bin."""
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="perfect")
    y = np.asarray(y, dtype=float)
    for name, p in preds.items():
        p = np.asarray(p, dtype=float)
        bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
        xs, ys = [], []
        for b in range(n_bins):
            m = bins == b
            if m.sum() >= 10:
                xs.append(p[m].mean())
                ys.append(y[m].mean())
        ax.plot(xs, ys, marker="o", label=name)
    ax.set(xlabel="predicted win probability", ylabel="observed win rate", title="Calibration (test slice)",
           xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=8)
    return fig


def roc_plot(y: np.ndarray, preds: Mapping[str, np.ndarray], aucs: Mapping[str, float | None]) -> Figure:
    """ROC curves of the model, the baselines and (on simulated data) the oracle."""
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
    for name, p in preds.items():
        fpr, tpr, _ = roc_curve(y, p)
        auc = aucs.get(name)
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})" if auc is not None else name)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test slice)")
    ax.legend(fontsize=8)
    return fig


def lift_plot(y: np.ndarray, preds: Mapping[str, np.ndarray], n_bins: int = 10) -> Figure:
    """Win rate per score decile relative to the overall rate (decile 1 = highest scores)."""
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    y = np.asarray(y, dtype=float)
    base = y.mean() if len(y) and y.mean() > 0 else 1.0
    for name, p in preds.items():
        order = np.argsort(-np.asarray(p, dtype=float), kind="stable")
        parts = np.array_split(y[order], n_bins)
        ax.plot(range(1, n_bins + 1), [part.mean() / base if len(part) else np.nan for part in parts],
                marker="o", label=name)
    ax.axhline(1.0, ls="--", c="grey", lw=1)
    ax.set(xlabel="score decile (1 = highest)", ylabel="lift (win rate / overall)", title="Lift by decile")
    ax.legend(fontsize=8)
    return fig


def importance_plot(importance: pd.Series, title: str = "Win model feature importance (gain)", top: int = 25) -> Figure:
    """Horizontal bars of the largest importances."""
    imp = importance.sort_values(ascending=False).head(top)[::-1]
    fig = Figure(figsize=(7, max(3, 0.28 * len(imp) + 1)))
    ax = fig.add_subplot()
    ax.barh(list(imp.index), imp.to_numpy())
    ax.set(xlabel="total gain", title=title)
    fig.tight_layout()
    return fig


def confusion_plot(matrix: list[list[int]], labels: list[str], title: str) -> Figure:
    """Row-normalised confusion matrix (rows = real stage, columns = predicted)."""
    cm = np.asarray(matrix, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(6.5, 5.5))
    ax = fig.add_subplot()
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set(xlabel="predicted stage", ylabel="real stage", title=title)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return fig
