"""build_features: equal to the straightforward reference, one code path, typed output, clear errors."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from dealscore.data.history import DealHistory, from_frames
from dealscore.errors import ConfigError, DataValidationError
from dealscore.features import (
    FeatureContext,
    FeatureSpec,
    build_features,
    make_snapshots,
    scoring_snapshots,
)
from dealscore.taxonomy import StageTaxonomy, default_taxonomy

from .conftest import hand_history, random_history, simulator_available, snapshot

SPEC = FeatureSpec.default()


def assert_same_features(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Equal values (NaN where NaN), equal categories, same columns and order."""
    assert list(got.columns) == list(want.columns)
    for col in got.columns:
        a, b = got[col], want[col]
        if isinstance(a.dtype, pd.CategoricalDtype):
            assert list(a.cat.categories) == list(b.cat.categories), col
            assert a.astype(object).fillna("<NA>").tolist() == b.astype(object).fillna("<NA>").tolist(), col
        elif col in ("deal_id", "as_of"):
            assert (a.to_numpy() == b.to_numpy()).all(), col
        else:
            x, y = a.to_numpy(float), b.to_numpy(float)
            same = np.isclose(x, y, rtol=1e-9, atol=1e-9) | (np.isnan(x) & np.isnan(y))
            assert same.all(), f"{col}: {x[~same][:3]} != {y[~same][:3]} at {got.loc[~same, ['deal_id', 'as_of']][:3]}"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorized_pipeline_equals_reference(seed: int, reference: ModuleType) -> None:
    h = random_history(seed, jitter_ns=seed == 2)
    snaps = make_snapshots(h)
    sample = snaps.sample(min(len(snaps), 70), random_state=seed).sort_index()
    assert_same_features(build_features(h, sample, spec=SPEC), reference.reference_features(h, sample, SPEC))


@pytest.mark.skipif(not simulator_available(), reason="dealscore.data.simulate not available")
def test_vectorized_pipeline_equals_reference_on_simulated_crm(reference: ModuleType) -> None:
    from dealscore.data.simulate import simulate
    from dealscore.data.validate import validate_history

    h, _ = validate_history(simulate(150, seed=5).history)
    snaps = make_snapshots(h)
    sample = snaps.sample(40, random_state=0).sort_index()
    assert_same_features(build_features(h, sample, spec=SPEC), reference.reference_features(h, sample, SPEC))


def test_one_deal_with_context_equals_its_row_in_the_bulk_build() -> None:
    """The API path: a history holding one deal (+ its account) and the context fitted on the full history."""
    h = random_history(7, n_deals=15)
    snaps = make_snapshots(h)
    spec = SPEC.fit_vocabulary(build_features(h, snaps, spec=SPEC))
    bulk = build_features(h, snaps, spec=spec).reset_index(drop=True)
    context = FeatureContext().fit(h)
    rng = np.random.default_rng(0)
    for i in rng.choice(len(snaps), 12, replace=False):
        deal_id = snaps["deal_id"].iloc[i]
        one = h.for_deals([deal_id])
        one = one.replace(accounts=h.accounts[h.accounts["account_id"].isin(one.deals["account_id"])],
                          cut_at=h.data_cut)
        alone = build_features(one, snaps.iloc[[i]].reset_index(drop=True), spec=spec, context=context)
        assert_same_features(alone, bulk.iloc[[i]].reset_index(drop=True))


SMALL_FRAME = 64


def test_small_and_large_frames_are_assembled_identically() -> None:
    h = random_history(3, n_deals=20)
    snaps = make_snapshots(h)
    assert len(snaps) > SMALL_FRAME
    big = build_features(h, snaps, spec=SPEC)
    small = build_features(h, snaps.iloc[:SMALL_FRAME], spec=SPEC)
    pd.testing.assert_frame_equal(small, big.iloc[:SMALL_FRAME])
    chunked = build_features(h, snaps, spec=SPEC, chunk_size=17)
    pd.testing.assert_frame_equal(chunked, big)


def test_results_do_not_depend_on_pandas_private_fast_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    h = random_history(3)
    snaps = make_snapshots(h).iloc[:5]
    fast, fast_snaps = build_features(h, snaps, spec=SPEC), scoring_snapshots(h)
    monkeypatch.delattr(pd.DataFrame, "_from_arrays")
    monkeypatch.delattr(pd.DataFrame, "_get_column_array")
    pd.testing.assert_frame_equal(build_features(h, snaps, spec=SPEC), fast)
    pd.testing.assert_frame_equal(scoring_snapshots(h), fast_snaps)
    assert fast_snaps["deal_id"].dtype == object


def test_a_selected_spec_gives_its_columns_in_its_order() -> None:
    h = random_history(3)
    snaps = make_snapshots(h)
    fitted = SPEC.fit_vocabulary(build_features(h, snaps, spec=SPEC))
    spec = fitted.select(["amount", "declared_stage", "n_touches_30d", "industry"])
    f = build_features(h, snaps, spec=spec)
    assert list(f.columns) == ["deal_id", "as_of", "amount", "declared_stage", "n_touches_30d", "industry"]
    full = build_features(h, snaps, spec=fitted)
    pd.testing.assert_frame_equal(f, full[list(f.columns)])
    pd.testing.assert_frame_equal(build_features(h, snaps.iloc[:3], spec=spec), f.iloc[:3])


def test_frame_keeps_snapshot_order_index_and_types() -> None:
    h = random_history(4)
    snaps = make_snapshots(h).sample(frac=1.0, random_state=1)
    snaps.index = snaps.index + 1000
    f = build_features(h, snaps, spec=SPEC)
    assert f.index.equals(snaps.index)
    assert (f["deal_id"].to_numpy() == snaps["deal_id"].to_numpy()).all()
    assert list(f.columns) == ["deal_id", "as_of", *SPEC.feature_names]
    assert f["as_of"].dtype == "datetime64[ns]"
    assert list(f["declared_stage"].cat.categories) == SPEC.stages
    for name in SPEC.categorical_names:
        assert isinstance(f[name].dtype, pd.CategoricalDtype)
    numeric = [c for c in SPEC.feature_names if c not in SPEC.categorical_names]
    assert all(f[c].dtype == np.float64 for c in numeric)


def test_fitted_vocabulary_encodes_unseen_values_as_missing() -> None:
    h = random_history(5)
    snaps = make_snapshots(h)
    spec = SPEC.fit_vocabulary(build_features(h, snaps, spec=SPEC))
    assert spec.categories["industry"]
    accounts = h.accounts.copy()
    accounts.loc[:, "industry"] = "aerospace"
    f = build_features(h.replace(accounts=accounts), snaps, spec=spec)
    assert list(f["industry"].cat.categories) == spec.categories["industry"]
    assert f["industry"].isna().all()


def test_missing_values_are_nan_not_zero() -> None:
    h = hand_history(deals=[{"deal_id": "D", "created_at": 0, "amount": None}],
                     accounts=[{"account_id": "A1", "industry": "software"}])
    f = build_features(h, snapshot("D", 3), spec=SPEC).iloc[0]
    for name in ("declared_stage_order", "days_in_stage", "days_since_last_touch", "days_since_last_inbound",
                 "days_to_expected_close", "amount", "employees", "annual_revenue", "amount_to_revenue",
                 "inbound_share", "reply_rate", "stage_time_ratio", "account_age_days"):
        assert np.isnan(f[name]), name
    assert pd.isna(f["declared_stage"]) and pd.isna(f["region"])
    assert f["n_touches_total"] == 0 and f["deal_age_days"] == 3.0


def test_history_without_activities_or_stage_history_builds(tmp_path: object) -> None:
    """A Maven-like export: no touchpoints and no stage changes at all."""
    h = hand_history(deals=[{"deal_id": "D", "created_at": 0}, {"deal_id": "E", "created_at": 2, "closed_at": 9,
                                                                 "outcome": "won"}])
    f = build_features(h, make_snapshots(h), spec=SPEC)
    assert len(f) and f["n_touches_total"].eq(0).all() and f["declared_stage"].isna().all()


@pytest.mark.parametrize(
    ("snaps", "match"),
    [
        (lambda: snapshot("D", -1), "before their deal existed"),
        (lambda: snapshot("NOPE", 3), "not in deals"),
        (lambda: pd.DataFrame({"deal_id": ["D"]}), "missing column"),
        (lambda: pd.DataFrame({"deal_id": ["D"], "as_of": [pd.NaT]}), "without a time"),
    ],
)
def test_bad_snapshots_get_clear_errors(snaps: object, match: str) -> None:
    h = hand_history(deals=[{"deal_id": "D", "created_at": 0}])
    with pytest.raises(DataValidationError, match=match) as err:
        build_features(h, snaps(), spec=SPEC)  # type: ignore[operator]
    assert err.value.table == "snapshots"


def _unvalidated(**changes: pd.DataFrame) -> DealHistory:
    h = hand_history(deals=[{"deal_id": "D", "created_at": 0}],
                     stages=[{"deal_id": "D", "stage": "discovery", "changed_at": 1}],
                     acts=[{"deal_id": "D", "occurred_at": 2, "type": "email"}])
    return h.replace(**changes)


def test_history_that_fails_validation_gets_clear_errors() -> None:
    h = _unvalidated()
    bad_stage = h.stage_history.assign(stage="Needs Analysis")
    with pytest.raises(DataValidationError, match=r"stage_history, column stage.*Needs Analysis") as err:
        build_features(h.replace(stage_history=bad_stage), snapshot("D", 5), spec=SPEC)
    assert "validate" in str(err.value)
    with pytest.raises(DataValidationError, match="activities, column type"):
        build_features(h.replace(activities=h.activities.assign(type="fax")), snapshot("D", 5), spec=SPEC)
    with pytest.raises(DataValidationError, match=r"activities, column deal_id.*GHOST"):
        build_features(h.replace(activities=h.activities.assign(deal_id="GHOST")), snapshot("D", 5), spec=SPEC)
    with pytest.raises(DataValidationError, match="deal_id: ids repeat"):
        build_features(h.replace(deals=pd.concat([h.deals, h.deals])), snapshot("D", 5), spec=SPEC)
    with pytest.raises(DataValidationError, match="not parsed timestamps"):
        build_features(h.replace(activities=h.activities.assign(occurred_at="yesterday")), snapshot("D", 5),
                       spec=SPEC)


def test_spec_and_context_must_match_the_taxonomy() -> None:
    h = random_history(1)
    raw = default_taxonomy().to_dict()
    fewer = StageTaxonomy.from_dict({**raw, "stages": raw["stages"][:-1]})
    h = h.replace(stage_history=h.stage_history[h.stage_history["stage"] != "negotiation"])
    with pytest.raises(ConfigError, match="stages"):
        build_features(h, make_snapshots(h), spec=SPEC, context=FeatureContext().fit(h, fewer))
    with pytest.raises(ConfigError, match="stages"):
        build_features(h, make_snapshots(h), spec=SPEC, taxonomy=fewer)


def test_timezone_aware_and_microsecond_inputs_are_normalised() -> None:
    h = random_history(2)
    snaps = scoring_snapshots(h)
    want = build_features(h, snaps, spec=SPEC)
    aware = snaps.assign(as_of=snaps["as_of"].dt.tz_localize("UTC").dt.tz_convert("Europe/Berlin"))
    micro = snaps.assign(as_of=snaps["as_of"].astype("datetime64[us]"))
    pd.testing.assert_frame_equal(build_features(h, aware, spec=SPEC), want)
    pd.testing.assert_frame_equal(build_features(h, micro, spec=SPEC), want)


def test_api_payload_history_scores_one_deal_now() -> None:
    """What the API builds from a request: object columns, one deal, its account, no cut."""
    h = random_history(6, n_deals=30)
    context = FeatureContext().fit(h)
    payload = from_frames({
        "accounts": pd.DataFrame([{"account_id": "A1", "industry": "software"}]),
        "deals": pd.DataFrame([{"deal_id": "NEW", "account_id": "A1", "owner_id": "O1",
                                "created_at": "2023-06-01T09:00:00", "amount": 20000,
                                "expected_close_date": "2023-08-01"}]),
        "stage_history": pd.DataFrame([{"deal_id": "NEW", "stage": "discovery", "changed_at": "2023-06-10"}]),
        "activities": pd.DataFrame([{"deal_id": "NEW", "occurred_at": "2023-06-12T10:00:00", "type": "meeting",
                                     "direction": "inbound", "contact_role": "decision_maker"}]),
    })
    now = pd.Timestamp("2023-07-01T12:00:00")
    f = build_features(payload, scoring_snapshots(payload, now), spec=SPEC, context=context).iloc[0]
    assert f["declared_stage"] == "discovery" and f["has_meeting"] == 1 and f["decision_maker_engaged"] == 1
    assert f["days_to_expected_close"] == pytest.approx((pd.Timestamp("2023-08-01") - now) / pd.Timedelta(days=1))
    assert f["owner_closed_deals"] > 0  # from the context, not from the one-deal payload
