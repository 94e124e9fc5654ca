"""One LightGBM prediction on a float matrix, through the C function ``Booster.predict`` itself calls.

``Booster.predict`` builds a fresh inner predictor, copies its keyword
parameters, asks the library for the output length and inspects the input type
on every call: about 25 µs, as much as predicting one row of the win model.
Scoring one deal makes three such calls, so :func:`predict_matrix` calls
``LGBM_BoosterPredictForMat`` directly with the arguments ``Booster.predict``
passes for a C-ordered float64 matrix (same trees, same parameter string, hence
the same numbers). Where the library's internals are not reachable it falls back
to ``Booster.predict``; :meth:`dealscore.scoring.predict.ModelRunner.agrees`
checks either way against the models' own methods.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

try:  # LightGBM's own ctypes handle and error check (private, hence the fallback)
    from lightgbm.basic import _LIB, _safe_call
except ImportError:  # pragma: no cover - depends on the installed LightGBM
    _LIB = None
    _safe_call = None

#: ``predict_type`` values of the C API (LightGBM's c_api.h).
NORMAL, RAW_SCORE, CONTRIB = 0, 1, 3
_C_DOUBLE = 1  # C_API_DTYPE_FLOAT64
_ROW_MAJOR = 1


def predict_matrix(booster: Any, mat: np.ndarray, *, kind: int, iteration: int, threads: int, models: int
                   ) -> np.ndarray:
    """``booster.predict(mat, num_iteration=iteration, num_threads=threads, ...)`` as a flat float64 array.

    ``kind`` is :data:`NORMAL` (probabilities), :data:`RAW_SCORE` or :data:`CONTRIB`
    (per row: one value per feature then the bias, per model of an iteration);
    ``models`` is ``booster.num_model_per_iteration()`` (asked once by the caller).
    """
    handle = getattr(booster, "_handle", None)
    if _LIB is None or _safe_call is None or handle is None:
        return _through_wrapper(booster, mat, kind=kind, iteration=iteration, threads=threads)
    data = np.ascontiguousarray(mat, dtype=np.float64)
    nrow, ncol = data.shape
    per_row = models * (ncol + 1 if kind == CONTRIB else 1)
    out = np.empty(nrow * per_row, dtype=np.float64)
    if not nrow:
        return out
    n_out = ctypes.c_int64(0)
    _safe_call(_LIB.LGBM_BoosterPredictForMat(
        handle, data.ctypes.data_as(ctypes.c_void_p), ctypes.c_int(_C_DOUBLE), ctypes.c_int32(nrow),
        ctypes.c_int32(ncol), ctypes.c_int(_ROW_MAJOR), ctypes.c_int(kind), ctypes.c_int(0),
        ctypes.c_int(iteration), ctypes.c_char_p(f"num_threads={threads}".encode()), ctypes.byref(n_out),
        out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
    ))
    if n_out.value != len(out):
        raise ValueError(f"LightGBM wrote {n_out.value} predictions where {len(out)} were expected")
    return out


def _through_wrapper(booster: Any, mat: np.ndarray, *, kind: int, iteration: int, threads: int) -> np.ndarray:
    out = booster.predict(mat, num_iteration=iteration, raw_score=kind == RAW_SCORE, pred_contrib=kind == CONTRIB,
                          num_threads=threads)
    return np.asarray(out, dtype=np.float64).ravel()
