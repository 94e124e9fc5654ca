"""What-if features: a virtual deal equals the deal with the touchpoint really added to the history."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dealscore.data.history import DealHistory
from dealscore.errors import ConfigError
from dealscore.features import FeatureContext, FeatureSpec, Touchpoint, WhatIf, build_feature_block, build_features
from dealscore.features.build import STAGE_FEATURES, FeatureBlock
from dealscore.features.profile import PROFILE_FEATURES, profile_features
from dealscore.features.stage import prepare_stage, stage_features

from .conftest import random_history
from .test_build import assert_same_features

SPEC = FeatureSpec.default()


def _added(history: DealHistory, deal_id: str, touch: Touchpoint, at: pd.Timestamp) -> DealHistory:
    """The history with the touchpoint appended as an activity row (the edit a what-if stands for)."""
    acts = history.activities
    row = {c: None for c in acts.columns}
    row.update(activity_id=f"added-{deal_id}", deal_id=deal_id, occurred_at=at, recorded_at=at, type=touch.type,
               direction=touch.direction, contact_id=touch.contact_id, contact_role=touch.contact_role)
    extra = pd.DataFrame([row]).astype(acts.dtypes.to_dict())
    cut = history.cut_at if history.cut_at is not None and history.cut_at >= at else at
    return history.replace(activities=pd.concat([acts, extra], ignore_index=True), cut_at=cut)


def _touches(history: DealHistory, deal_id: str) -> list[Touchpoint]:
    known = history.activities.loc[history.activities["deal_id"] == deal_id, "contact_id"].dropna()
    old = str(known.iloc[0]) if len(known) else "C-new-0"
    return [
        Touchpoint("meeting", "outbound", "C-new-1", "decision_maker"),
        Touchpoint("email", "inbound", old, "champion"),
        Touchpoint("proposal", "outbound", None, None),
        Touchpoint("note", None, old, None),
    ]


@pytest.mark.parametrize("seed", [3, 8])
def test_what_if_rows_equal_building_the_edited_history(seed: int) -> None:
    history = random_history(seed)
    all_open = pd.DataFrame({"deal_id": history.deals["deal_id"].astype(object), "as_of": history.deals["created_at"]})
    spec = SPEC.fit_vocabulary(build_features(history, all_open, spec=SPEC))  # the vocabulary a bundle holds
    context = FeatureContext().fit(history, spec=spec)
    deals = history.deals
    rows = []
    for _, d in deals.head(6).iterrows():
        end = d["closed_at"] if pd.notna(d["closed_at"]) else history.data_cut
        rows.append((d["deal_id"], d["created_at"] + (end - d["created_at"]) * 0.6))
    rows.append((deals["deal_id"].iloc[0], history.data_cut + pd.Timedelta(days=3)))  # later than the cut
    snaps = pd.DataFrame({"deal_id": pd.Series([r[0] for r in rows], dtype=object), "as_of": [r[1] for r in rows]})
    items = [(i, t) for i in range(len(rows)) for t in _touches(history, rows[i][0])]
    what_if = WhatIf(history, snaps, spec=spec, context=context)
    got = what_if.with_touchpoints(items, keep_snapshots=True).frame()
    assert_same_features(got.iloc[: len(rows)].reset_index(drop=True),
                         build_features(history, snaps, spec=spec, context=context))
    for j, (i, touch) in enumerate(items):
        deal_id, at = rows[i]
        want = build_features(_added(history, deal_id, touch, at), snaps.iloc[[i]].reset_index(drop=True),
                              spec=spec, context=context)
        assert_same_features(got.iloc[[len(rows) + j]].reset_index(drop=True), want)
    alone = what_if.with_touchpoints(items).frame()
    assert_same_features(alone, got.iloc[len(rows):].reset_index(drop=True))


def test_what_ifs_after_the_snapshots_equal_what_ifs_alone() -> None:
    """Once the snapshots' own features are computed, copies take their profile features from them."""
    history = random_history(8)
    spec = SPEC.fit_vocabulary(build_features(history, pd.DataFrame({
        "deal_id": history.deals["deal_id"].astype(object), "as_of": history.deals["created_at"]}), spec=SPEC))
    context = FeatureContext().fit(history, spec=spec)
    d = history.deals.head(5)
    snaps = pd.DataFrame({"deal_id": d["deal_id"].astype(object), "as_of": d["created_at"] + pd.Timedelta(days=30)})
    items = [(i, t) for i in range(len(snaps)) for t in _touches(history, snaps["deal_id"].iloc[i])]
    fresh = WhatIf(history, snaps, spec=spec, context=context).with_touchpoints(items).frame()
    what_if = WhatIf(history, snaps, spec=spec, context=context)
    what_if.snapshots()
    assert_same_features(what_if.with_touchpoints(items).frame(), fresh)
    assert_same_features(what_if.with_touchpoints(items, keep_snapshots=True).frame().iloc[len(snaps):]
                         .reset_index(drop=True), fresh)


def test_profile_features_lists_what_profile_features_returns() -> None:
    history = random_history(4)
    snaps = pd.DataFrame({"deal_id": history.deals["deal_id"].astype(object).iloc[:3], "as_of": history.data_cut})
    what_if = WhatIf(history, snaps, spec=SPEC)
    got = profile_features(what_if.deals, what_if.q_deal, what_if.q_time, np.ones(3), what_if.context)
    assert tuple(got) == PROFILE_FEATURES


def test_what_if_fits_the_context_on_the_history_not_the_copies() -> None:
    history = random_history(5)
    snaps = pd.DataFrame({"deal_id": pd.Series([history.deals["deal_id"].iloc[2]], dtype=object),
                          "as_of": [history.data_cut]})
    block = WhatIf(history, snaps, spec=SPEC).snapshots()
    assert_same_features(block.frame(), build_features(history, snaps, spec=SPEC))


def test_snapshots_given_as_arrays_equal_the_frame() -> None:
    history = random_history(6)
    snaps = pd.DataFrame({"deal_id": history.deals["deal_id"].astype(object).iloc[:4],
                          "as_of": history.deals["created_at"].iloc[:4] + pd.Timedelta(days=20)})
    arrays = (snaps["deal_id"].to_numpy(dtype=object), snaps["as_of"].to_numpy())
    assert_same_features(WhatIf(history, arrays, spec=SPEC).snapshots().frame(),
                         build_features(history, snaps, spec=SPEC))


def test_feature_block_is_what_build_features_assembles() -> None:
    history = random_history(4)
    snaps = pd.DataFrame({"deal_id": history.deals["deal_id"].astype(object), "as_of": history.data_cut})
    block = build_feature_block(history, snaps, spec=SPEC)
    assert isinstance(block, FeatureBlock) and len(block) == len(snaps)
    frame = build_features(history, snaps, spec=SPEC)
    assert_same_features(block.frame(), frame)
    codes, cats = block.categorical("declared_stage")
    decoded = [cats[c] if c >= 0 else None for c in codes]
    assert decoded == frame["declared_stage"].astype(object).where(frame["declared_stage"].notna(), None).tolist()
    j = block.numeric_names.index("n_touches_total")
    assert np.array_equal(block.numeric[:, j], frame["n_touches_total"].to_numpy(float))


def test_unknown_touchpoint_type_and_bad_rows_are_refused() -> None:
    history = random_history(2)
    snaps = pd.DataFrame({"deal_id": pd.Series([history.deals["deal_id"].iloc[0]], dtype=object),
                          "as_of": [history.data_cut]})
    what_if = WhatIf(history, snaps, spec=SPEC)
    with pytest.raises(ConfigError, match="fax"):
        what_if.with_touchpoints([(0, Touchpoint("fax"))])
    with pytest.raises(ConfigError, match="rows outside"):
        what_if.with_touchpoints([(1, Touchpoint("email"))])


def test_what_ifs_after_the_snapshots_equal_the_edited_history_around_the_cut() -> None:
    """Copies take their snapshot's stage features too, also where the added touchpoint moves the data cut."""
    history = random_history(3)
    spec = SPEC.fit_vocabulary(build_features(history, pd.DataFrame({
        "deal_id": history.deals["deal_id"].astype(object), "as_of": history.deals["created_at"]}), spec=SPEC))
    context = FeatureContext().fit(history, spec=spec)
    ids = history.deals["deal_id"].astype(object)
    times = [history.data_cut - pd.Timedelta(days=2), history.data_cut, history.data_cut + pd.Timedelta(days=5)]
    snaps = pd.DataFrame({"deal_id": pd.Series([ids.iloc[i % len(ids)] for i in range(3)], dtype=object),
                          "as_of": times})
    items = [(i, t) for i in range(len(snaps)) for t in _touches(history, snaps["deal_id"].iloc[i])]
    what_if = WhatIf(history, snaps, spec=spec, context=context)
    what_if.snapshots()
    got = what_if.with_touchpoints(items).frame()
    for j, (i, touch) in enumerate(items):
        want = build_features(_added(history, snaps["deal_id"].iloc[i], touch, snaps["as_of"].iloc[i]),
                              snaps.iloc[[i]].reset_index(drop=True), spec=spec, context=context)
        assert_same_features(got.iloc[[j]].reset_index(drop=True), want)


def test_stage_features_lists_what_stage_features_and_the_norms_return() -> None:
    history = random_history(4)
    snaps = pd.DataFrame({"deal_id": history.deals["deal_id"].astype(object).iloc[:3], "as_of": history.data_cut})
    what_if = WhatIf(history, snaps, spec=SPEC)
    timeline = prepare_stage(what_if.stage_rows, len(what_if.deals))
    got = stage_features(timeline, what_if.deals, what_if.q_deal, what_if.q_time, what_if.cut)
    assert set(got) - {"_stage_code"} | {"stage_median_days_won", "stage_time_ratio"} == set(STAGE_FEATURES)
