"""FeatureSpec: the fixed names other areas rely on, vocabularies, and a faithful round trip."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from dealscore.errors import ConfigError
from dealscore.features import FeatureSpec
from dealscore.taxonomy import StageTaxonomy, default_taxonomy

#: names fixed by the agreed interface (scoring and models build on them)
FIXED = ["declared_stage", "declared_stage_order", "days_in_stage", "deal_age_days", "days_since_last_touch",
         "days_since_last_inbound", "n_outbound_unanswered", "n_contacts", "decision_maker_engaged",
         "champion_engaged", "has_meeting", "has_demo", "has_proposal", "has_contract", "days_to_expected_close",
         "close_date_pushes", "stage_time_ratio", "amount", "n_touches_30d", "pricing_discussed"]


def test_default_spec_has_the_agreed_columns_once_each() -> None:
    spec = FeatureSpec.default()
    names = spec.feature_names
    assert set(FIXED) <= set(names)
    assert len(names) == len(set(names))
    assert spec.categories["declared_stage"] == default_taxonomy().names
    assert spec.info("declared_stage").kind == "category" and spec.info("amount").kind == "number"
    assert {c.kind for c in spec.columns} == {"category", "binary", "count", "number"}
    assert all(c.meaning and c.unit and c.group for c in spec.columns)


def test_round_trip_through_json_keeps_everything() -> None:
    spec = FeatureSpec.default().fit_vocabulary(pd.DataFrame({"industry": ["b", "a", None], "region": ["x"] * 3}))
    back = FeatureSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert back == spec
    assert back.categories["industry"] == ["a", "b"] and back.categories["product"] == []


def test_fit_vocabulary_keeps_fixed_vocabularies_and_encode_maps_unknowns_to_nan() -> None:
    spec = FeatureSpec.default().fit_vocabulary(pd.DataFrame({"industry": pd.Categorical(["retail", "software"])}))
    refit = spec.fit_vocabulary(pd.DataFrame({"industry": ["zoo"], "declared_stage": ["nonsense"]}))
    assert refit.categories["industry"] == ["retail", "software"]
    assert refit.categories["declared_stage"] == spec.stages
    out = spec.encode(pd.DataFrame({"industry": ["software", "zoo", None]}))
    assert out["industry"].astype(object).tolist()[0] == "software" and out["industry"].isna().tolist()[1:] == [
        True, True]


def test_custom_taxonomy_changes_stage_and_type_columns() -> None:
    raw = default_taxonomy().to_dict()
    raw["stages"] = [*raw["stages"][:3], {"name": "pilot", "key_touchpoints": ["demo", "champion"]}]
    raw["activity_types"] = [*raw["activity_types"], "webinar"]
    spec = FeatureSpec.default(StageTaxonomy.from_dict(raw))
    assert "evidence_pilot" in spec.feature_names and "n_webinar_30d" in spec.feature_names
    assert "evidence_negotiation" not in spec.feature_names
    raw["stages"][3]["key_touchpoints"] = ["telepathy"]
    with pytest.raises(ConfigError, match="telepathy"):
        FeatureSpec.default(StageTaxonomy.from_dict(raw))


def test_select_and_malformed_specs() -> None:
    spec = FeatureSpec.default()
    small = spec.select(["amount", "declared_stage"])
    assert small.feature_names == ["amount", "declared_stage"]
    with pytest.raises(ConfigError, match="no features"):
        spec.select(["shoe_size"])
    with pytest.raises(ConfigError, match="cannot build"):
        FeatureSpec.from_dict({**spec.to_dict(), "columns": [{"name": "shoe_size", "group": "x", "meaning": "x",
                                                              "unit": "x", "kind": "number"}]})
    with pytest.raises(ConfigError, match="malformed"):
        FeatureSpec.from_dict({"columns": []})
