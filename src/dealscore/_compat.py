"""Every shortcut through a private (or internals-only) pandas or LightGBM API, each beside its public route.

The scoring hot path reads a few columns of a one-deal frame and makes three
booster calls; through the public APIs the wrapping (a Series per column, a
fresh predictor per call, a re-inspected frame) costs more than the work. The
shortcuts below skip that wrapping and nothing else: each falls back to the
public route when the private one is missing (another pandas or LightGBM
version) or switched off, and gives the same values. ``tests/test_compat.py``
runs every function both ways and compares. Nothing else in the product may
touch a private pandas or LightGBM name.

Each shortcut says what it saves and **Remove when** it is no longer needed.
"""

from __future__ import annotations

import ctypes
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

try:  # public in pandas >= 3 ("for downstream libraries"), but an internals API, hence here
    from pandas.api.internals import create_dataframe_from_blocks as _create_dataframe_from_blocks
except ImportError:  # pragma: no cover - depends on the installed pandas
    _create_dataframe_from_blocks = None

try:  # LightGBM's ctypes library handle and its error check (private)
    from lightgbm.basic import _LIB, _safe_call
except ImportError:  # pragma: no cover - depends on the installed LightGBM
    _LIB = None
    _safe_call = None

_NS = np.dtype("datetime64[ns]")

# --------------------------------------------------------------------------- pandas

#: ``DataFrame._get_column_array``: the stored array of a column, without building a Series
#: (``frame[name]`` builds one each time, which costs more than many one-deal features).
#: Remove when: pandas offers a public accessor for a column's stored array.
USE_COLUMN_ARRAY = True


def column_array(frame: pd.DataFrame, loc: int) -> Any:
    """The stored array of the column at position ``loc``: an ndarray for NumPy-backed columns, else the
    pandas extension array. Public route: ``frame.iloc[:, loc].array`` (unwrapped to the ndarray)."""
    getter = getattr(frame, "_get_column_array", None) if USE_COLUMN_ARRAY else None
    if getter is not None:
        return getter(loc)
    values = frame.iloc[:, loc].array
    return values.to_numpy() if isinstance(values, pd.arrays.NumpyExtensionArray) else values


#: ``Index._values._pa_array``: an Arrow-backed string index's names in one ``to_pylist`` call
#: (``Index.to_numpy`` converts them one by one). Remove when: ``to_numpy(dtype=object)`` of an
#: Arrow string index is as cheap as Arrow's ``to_pylist``.
USE_ARROW_INDEX = True


def column_names(columns: pd.Index) -> list[Any]:
    """A frame's column labels as a list. Public route: ``list(columns.to_numpy(dtype=object))``."""
    chunks = getattr(getattr(columns, "_values", None), "_pa_array", None) if USE_ARROW_INDEX else None
    if chunks is not None and hasattr(chunks, "to_pylist") and len(chunks) == len(columns):
        return list(chunks.to_pylist())
    return list(columns.to_numpy(dtype=object))


#: ``DataFrame._mgr.blocks``: every zone-less ns timestamp column read from its block's backing
#: array (pandas builds a new DatetimeArray for each column it hands out). Remove when: pandas
#: hands out datetime columns without building an array per access.
USE_BLOCKS = True


def naive_ns_columns(frame: pd.DataFrame) -> dict[int, np.ndarray]:
    """Column position → ``datetime64[ns]`` storage of the zone-less ns timestamp columns found in the blocks.

    Public route: an empty mapping, meaning "read each column on its own"
    (callers do exactly that for any column missing here).
    """
    out: dict[int, np.ndarray] = {}
    blocks = getattr(getattr(frame, "_mgr", None), "blocks", None) if USE_BLOCKS else None
    if blocks is None:
        return out
    for blk in blocks:
        values = getattr(blk, "values", None)
        if not (isinstance(values, pd.arrays.DatetimeArray) and values.tz is None and values.dtype == _NS):
            continue
        data, locs = getattr(values, "_ndarray", None), getattr(blk, "mgr_locs", None)
        if not (isinstance(data, np.ndarray) and data.dtype == _NS and locs is not None):
            continue
        positions = np.asarray(locs.as_array if hasattr(locs, "as_array") else locs).tolist()
        if data.ndim == 2 and data.shape[0] == len(positions):
            out.update(zip(positions, data, strict=True))
        elif data.ndim == 1 and len(positions) == 1:
            out[positions[0]] = data
    return out


#: ``pandas.api.internals.create_dataframe_from_blocks``: a frame from ready-made blocks with no copy
#: and no per-column inspection (for one deal scored now this costs more than its features).
#: Remove when: never while the hot path builds frames; it is pandas' supported route for libraries.
USE_BLOCK_FRAMES = True


def frame_from_blocks(blocks: Sequence[tuple[Any, np.ndarray]], index: pd.Index, columns: pd.Index) -> pd.DataFrame:
    """A frame from ``(values, positions)`` blocks: a 2-D ndarray holds one column per row, an extension
    array one column. Public route: ``pd.DataFrame`` of the columns (object arrays kept as object)."""
    if _create_dataframe_from_blocks is not None and USE_BLOCK_FRAMES:
        return _create_dataframe_from_blocks(blocks, index=index, columns=columns)
    by_position: dict[int, Any] = {}
    for values, positions in blocks:
        if isinstance(values, np.ndarray) and values.ndim == 2:
            by_position.update(zip((int(p) for p in positions), values, strict=True))
        else:
            by_position[int(np.asarray(positions).ravel()[0])] = values
    return public_frame(columns, [by_position[i] for i in range(len(columns))], index)


#: ``DataFrame._from_arrays`` (what pandas' own readers use): a frame from finished column arrays
#: without re-inspecting each one (a small frame through the public constructors costs more than
#: computing a deal's features). Remove when: ``pd.DataFrame(dict, copy=False)`` is as cheap.
USE_FROM_ARRAYS = True


def frame_from_arrays(columns: pd.Index, arrays: list[Any], index: pd.Index | None = None) -> pd.DataFrame:
    """A frame from one finished array per column. Public route: :func:`public_frame`."""
    n = len(arrays[0]) if arrays else 0
    index = pd.RangeIndex(n) if index is None else index
    if USE_FROM_ARRAYS and hasattr(pd.DataFrame, "_from_arrays"):
        return pd.DataFrame._from_arrays(arrays, columns=columns, index=index, verify_integrity=False)
    return public_frame(columns, arrays, index)


def public_frame(columns: pd.Index, arrays: Sequence[Any], index: pd.Index) -> pd.DataFrame:
    """A frame of these columns through the public constructor; object arrays stay object columns
    (pandas 3 would otherwise infer its string dtype), nothing is copied that need not be."""
    data = {c: pd.Series(a, dtype=object, index=index, copy=False)
            if isinstance(a, np.ndarray) and a.dtype.kind == "O" else pd.Series(a, index=index, copy=False)
            for c, a in zip(columns, arrays, strict=True)}
    return pd.DataFrame(data, index=index, columns=columns, copy=False)


# --------------------------------------------------------------------------- LightGBM

#: ``predict_type`` values of the C API (LightGBM's c_api.h).
NORMAL, RAW_SCORE, CONTRIB = 0, 1, 3
_C_DOUBLE = 1  # C_API_DTYPE_FLOAT64
_ROW_MAJOR = 1


def predict_matrix(booster: Any, mat: np.ndarray, *, kind: int, iteration: int, threads: int, models: int
                   ) -> np.ndarray:
    """``booster.predict(mat, num_iteration=iteration, num_threads=threads, ...)`` as a flat float64 array.

    Shortcut: ``LGBM_BoosterPredictForMat`` through ``lightgbm.basic._LIB`` with the
    arguments ``Booster.predict`` passes for a C-ordered float64 matrix (same trees,
    same parameter string, hence the same numbers), skipping the ~25 µs of wrapper
    work per call that ``Booster.predict`` spends. Public route: ``Booster.predict``.
    Remove when: LightGBM's ``Booster.predict`` costs little next to predicting one row.

    ``kind`` is :data:`NORMAL` (probabilities), :data:`RAW_SCORE` or :data:`CONTRIB`
    (per row: one value per feature then the bias, per model of an iteration);
    ``models`` is ``booster.num_model_per_iteration()`` (asked once by the caller).
    """
    handle = getattr(booster, "_handle", None)
    if _LIB is None or _safe_call is None or handle is None:
        return booster_predict(booster, mat, kind=kind, iteration=iteration, threads=threads)
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


def booster_predict(booster: Any, mat: np.ndarray, *, kind: int, iteration: int, threads: int) -> np.ndarray:
    """The public route of :func:`predict_matrix`: ``Booster.predict``, flattened to float64."""
    if not len(mat):
        return np.empty(0, dtype=np.float64)
    out = booster.predict(mat, num_iteration=iteration, raw_score=kind == RAW_SCORE, pred_contrib=kind == CONTRIB,
                          num_threads=threads)
    return np.asarray(out, dtype=np.float64).ravel()


#: ``LGBM_DumpParamAliases`` through ``lightgbm.basic._LIB``: every parameter name the installed LightGBM
#: knows, with its aliases, so a training config can refuse a misspelt one (LightGBM itself only logs
#: "Unknown parameter" and trains without it). The C function is part of LightGBM's public C API
#: (``c_api.h``); only the Python package's handle to the loaded library is private. Public route: none
#: (the Python package has no public list of its parameters), so without the shortcut callers get None and
#: leave parameter names unchecked. Remove when: the Python package publishes its parameter table.
USE_PARAMETER_TABLE = True


def lightgbm_parameters() -> dict[str, frozenset[str]] | None:
    """Each LightGBM parameter's main name → every name it answers to (itself and its aliases), or None
    where the installed LightGBM cannot be asked (names then go unchecked)."""
    if _LIB is None or _safe_call is None or not USE_PARAMETER_TABLE:
        return None
    size = 1 << 20
    for _ in range(2):  # the second call with the length the first reported, if the buffer was short
        out_len = ctypes.c_int64(0)
        buffer = ctypes.create_string_buffer(size)
        _safe_call(_LIB.LGBM_DumpParamAliases(ctypes.c_int64(size), ctypes.byref(out_len),
                                              ctypes.c_char_p(ctypes.addressof(buffer))))
        if out_len.value <= size:
            break
        size = int(out_len.value)
    table = json.loads(buffer.value.decode("utf-8"))
    return {str(name): frozenset([str(name), *map(str, aliases)]) for name, aliases in table.items()}


__all__ = [
    "CONTRIB",
    "NORMAL",
    "RAW_SCORE",
    "booster_predict",
    "column_array",
    "column_names",
    "frame_from_arrays",
    "frame_from_blocks",
    "lightgbm_parameters",
    "naive_ns_columns",
    "predict_matrix",
    "public_frame",
]
