"""DESIGN §5 for the time-to-close model: its inputs on the full history equal those on the history known at as_of."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dealscore.features import FeatureSpec, build_features
from dealscore.forecast.features import CLOSE_TIME_COLUMNS, close_time_matrix
from tests.features.conftest import hand_history, random_history, snapshot

SPEC = FeatureSpec.default()


def _matrix(history, snaps: pd.DataFrame) -> np.ndarray:
    f = build_features(history, snaps, spec=SPEC)
    return close_time_matrix(f, snaps["as_of"].to_numpy(dtype="datetime64[ns]"), len(snaps))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 100_000), frac=st.floats(0.05, 0.95), late_share=st.sampled_from([0.0, 0.5]))
def test_close_time_inputs_on_full_history_equal_inputs_on_history_known_at_as_of(
    seed: int, frac: float, late_share: float
) -> None:
    h = random_history(seed, n_deals=8, late_share=late_share)
    deals = h.deals
    start, cut = deals["created_at"].min(), h.data_cut
    t = start + (cut - start) * frac
    open_at_t = deals[(deals["created_at"] <= t) & ~(deals["closed_at"] <= t)]["deal_id"].tolist()
    if not open_at_t:
        return
    snaps = pd.DataFrame({"deal_id": open_at_t, "as_of": t})
    full, truncated = _matrix(h, snaps), _matrix(h.as_known_at(t), snaps)
    np.testing.assert_allclose(full, truncated, rtol=1e-12, atol=0, equal_nan=True)


def test_close_date_history_reaches_the_model_as_known_then() -> None:
    """A pushed close date counts from when the push was recorded, and the quarter columns follow as_of."""
    h = hand_history(
        deals=[{"deal_id": "D", "created_at": 0, "expected_close_date": 80}],
        stages=[{"deal_id": "D", "stage": "qualification", "changed_at": 0, "expected_close_date": 30},
                {"deal_id": "D", "stage": "discovery", "changed_at": 20, "recorded_at": 25,
                 "expected_close_date": 60}],
    )
    m = _matrix(h, snapshot("D", [10, 22, 26]))
    cols = list(CLOSE_TIME_COLUMNS)
    to_close = m[:, cols.index("days_to_expected_close")]
    pushes = m[:, cols.index("close_date_pushes")]
    assert to_close[0] == 20 and to_close[1] == 8 and to_close[2] == 34
    assert pushes.tolist() == [0, 0, 1]
    assert (m[:, cols.index("quarter_day")] + m[:, cols.index("days_to_quarter_end")] > 80).all()
