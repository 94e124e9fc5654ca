"""`FeatureSpec`: which feature columns exist, what they mean, and how categoricals are encoded.

The spec travels inside the model bundle. Training and scoring both build
features through it, so a categorical value gets the same code at scoring time
as it had in training, and a feature renamed or dropped in code cannot silently
shift the columns a trained model reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from dealscore.errors import ConfigError
from dealscore.taxonomy import StageTaxonomy, default_taxonomy

Kind = Literal["category", "binary", "count", "number"]
WINDOWS = (7, 30, 90)
KEY_TYPES = ("meeting", "demo", "proposal", "contract")
OPEN_VOCABULARIES = ("industry", "region", "product", "source")
EVIDENCE_TOKENS = {
    "outbound_touch": "an outbound touch was logged",
    "inbound_reply": "the customer wrote or called in (an inbound touch)",
    "first_meeting": "a meeting took place",
    "meeting": "a meeting took place",
    "decision_maker": "a decision maker was engaged",
    "champion": "a champion was engaged",
}


@dataclass(frozen=True)
class FeatureInfo:
    """One feature column: its name, business group, meaning in words, unit and kind."""

    name: str
    group: str
    meaning: str
    unit: str
    kind: Kind

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "group": self.group, "meaning": self.meaning, "unit": self.unit, "kind": self.kind}


def _f(name: str, group: str, meaning: str, unit: str, kind: Kind = "number") -> FeatureInfo:
    return FeatureInfo(name, group, meaning, unit, kind)


def evidence_meaning(token: str, activity_types: tuple[str, ...] | list[str]) -> str:
    """What a taxonomy key touchpoint means as a fact in the history (raises for unknown ones)."""
    if token in EVIDENCE_TOKENS:
        return EVIDENCE_TOKENS[token]
    if token in activity_types:
        return f"a {token} touchpoint was logged"
    raise ConfigError(
        f"taxonomy key touchpoint {token!r} is not known to the feature pipeline; use one of "
        f"{sorted(EVIDENCE_TOKENS)} or an activity type {list(activity_types)}"
    )


def default_columns(stages: list[str], activity_types: list[str], evidence: dict[str, list[str]]) -> list[FeatureInfo]:
    """Every feature the pipeline computes, in frame order (the catalog is generated from this)."""
    cols = [
        _f("declared_stage", "stage", "stage shown in the CRM at as_of: the latest stage change recorded by then",
           "stage", "category"),
        _f("declared_stage_order", "stage", "order of the declared stage in the pipeline (1 = first)", "stage order"),
        _f("days_in_stage", "stage", "days since the CRM says the deal entered its declared stage", "days"),
        _f("n_stage_changes", "stage", "stage changes recorded so far (a change to a different stage)", "count",
           "count"),
        _f("n_regressions", "stage", "stage changes that went backwards in the pipeline", "count", "count"),
        _f("n_skipped_stages", "stage", "stages jumped over by forward stage changes", "count", "count"),
        _f("max_stage_order", "stage", "furthest stage order the deal has been recorded in", "stage order"),
        _f("days_since_stage_update", "stage", "days since the last stage-history row was recorded", "days"),
        _f("stage_median_days_won", "stage",
           "median days won deals spent in the declared stage (won deals closed before the weekly checkpoint)",
           "days"),
        _f("stage_time_ratio", "stage",
           "days in stage / median days won deals spent in that stage (median floored at 1 day)", "ratio"),
        _f("deal_age_days", "timing", "days since the deal was created", "days"),
        _f("days_to_expected_close", "timing",
           "days until the expected close date known at as_of (negative = date has passed)", "days"),
        _f("close_date_pushes", "timing", "times the expected close date was moved later", "count", "count"),
    ]
    for w in WINDOWS:
        cols.append(_f(f"n_touches_{w}d", "activity", f"touchpoints that happened in the last {w} days", "count",
                       "count"))
    cols.append(_f("n_touches_total", "activity", "touchpoints over the deal's life", "count", "count"))
    for t in activity_types:
        for w in WINDOWS:
            cols.append(_f(f"n_{t}_{w}d", "activity", f"{t} touchpoints in the last {w} days", "count", "count"))
        cols.append(_f(f"n_{t}_total", "activity", f"{t} touchpoints over the deal's life", "count", "count"))
    cols += [
        _f("touch_trend", "activity",
           "log2((touches in the last 30 days + 1) / (touches in the 30 days before + 1)); > 0 = picking up",
           "log2 ratio"),
        _f("days_since_last_touch", "activity", "days since the last touchpoint happened (NaN: none yet)", "days"),
        _f("n_inbound_30d", "engagement", "inbound touchpoints in the last 30 days", "count", "count"),
        _f("n_outbound_30d", "engagement", "outbound touchpoints in the last 30 days", "count", "count"),
        _f("n_inbound_total", "engagement", "inbound touchpoints over the deal's life", "count", "count"),
        _f("n_outbound_total", "engagement", "outbound touchpoints over the deal's life", "count", "count"),
        _f("inbound_share", "engagement", "inbound / (inbound + outbound) touchpoints (NaN: no directed touch)",
           "ratio"),
        _f("n_replies", "engagement", "inbound touchpoints that came after an outbound one (replies to outreach)",
           "count", "count"),
        _f("reply_rate", "engagement", "replies / outbound touchpoints (NaN: no outreach yet)", "ratio"),
        _f("n_outbound_unanswered", "engagement", "outbound touchpoints since the last inbound one", "count",
           "count"),
        _f("days_since_last_inbound", "engagement", "days since the customer last reached out (NaN: never)",
           "days"),
        _f("n_contacts", "engagement", "distinct contacts engaged", "people", "count"),
        _f("decision_maker_engaged", "engagement", "a decision maker has been engaged (1) or not (0)", "0/1",
           "binary"),
        _f("champion_engaged", "engagement", "a champion has been engaged (1) or not (0)", "0/1", "binary"),
    ]
    for t in KEY_TYPES:
        cols.append(_f(f"has_{t}", "evidence", f"a {t} has happened (1) or not (0)", "0/1", "binary"))
    cols.append(_f("pricing_discussed", "evidence", "a proposal or contract touchpoint has happened (1) or not (0)",
                   "0/1", "binary"))
    for t in KEY_TYPES:
        cols.append(_f(f"days_since_last_{t}", "evidence", f"days since the last {t} (NaN: none yet)", "days"))
    for s in stages:
        tokens = evidence.get(s, [])
        what = "; ".join(evidence_meaning(t, activity_types) for t in tokens) or "no key touchpoints configured"
        cols.append(_f(f"evidence_{s}", "evidence",
                       f"share of the {s} stage's key touchpoints that have happened ({what})", "share"))
    cols += [
        _f("evidence_stage_order", "evidence",
           "order of the furthest stage whose key touchpoints have all happened (0 = none)", "stage order"),
        _f("industry", "customer", "the account's industry", "category", "category"),
        _f("region", "customer", "the account's region", "category", "category"),
        _f("employees", "customer", "the account's head count", "people"),
        _f("annual_revenue", "customer", "the account's annual revenue", "currency"),
        _f("account_age_days", "customer", "days since the account was created (NaN: unknown)", "days"),
        _f("account_prior_deals", "customer", "other deals of the account created by as_of", "count", "count"),
        _f("account_closed_deals", "customer", "other deals of the account closed before as_of", "count", "count"),
        _f("account_win_rate", "customer",
           "win rate of the account's deals closed before as_of, shrunk towards the overall rate", "share"),
        _f("amount", "deal", "deal amount known at as_of", "currency"),
        _f("amount_to_revenue", "deal", "amount / the account's annual revenue", "ratio"),
        _f("product", "deal", "product or product line", "category", "category"),
        _f("source", "deal", "lead source", "category", "category"),
        _f("owner_closed_deals", "owner", "deals the owner closed before as_of (experience)", "count", "count"),
        _f("owner_win_rate", "owner",
           "win rate of the owner's deals closed before as_of, shrunk towards the overall rate", "share"),
        _f("owner_open_deals", "owner", "other deals the owner has open at as_of (workload)", "count", "count"),
    ]
    # categoricals first: the frame is then one categorical part and one float block (cheap to build)
    return [c for c in cols if c.kind == "category"] + [c for c in cols if c.kind != "category"]


@dataclass
class FeatureSpec:
    """The feature columns, their fixed categorical vocabularies, and the taxonomy facts they rest on.

    An empty vocabulary means "not fitted yet": ``build_features`` then uses the
    sorted values it sees. Call :meth:`fit_vocabulary` on the training frame so
    scoring encodes exactly as training did (unseen values become NaN).
    """

    columns: list[FeatureInfo]
    categories: dict[str, list[str]]
    stages: list[str]
    activity_types: list[str]
    contact_roles: list[str]
    evidence: dict[str, list[str]]
    _compiled: Any = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def default(cls, taxonomy: StageTaxonomy | None = None) -> FeatureSpec:
        """All features for a taxonomy (the shipped one by default); open vocabularies unfitted."""
        tax = taxonomy or default_taxonomy()
        stages = tax.names
        types = list(tax.activity_types)
        evidence = {s.name: list(s.key_touchpoints) for s in tax.stages}
        cats: dict[str, list[str]] = {"declared_stage": list(stages)}
        cats.update({name: [] for name in OPEN_VOCABULARIES})
        return cls(columns=default_columns(stages, types, evidence), categories=cats, stages=list(stages),
                   activity_types=types, contact_roles=list(tax.contact_roles), evidence=evidence)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_compiled"] = None  # a build-time cache, rebuilt on first use
        return state

    @property
    def feature_names(self) -> list[str]:
        """Feature column names in frame order."""
        return [c.name for c in self.columns]

    @property
    def categorical_names(self) -> list[str]:
        return [c.name for c in self.columns if c.kind == "category"]

    def info(self, name: str) -> FeatureInfo:
        """The catalog entry of one feature."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def dtype(self, name: str, observed: pd.Series | None = None) -> pd.CategoricalDtype:
        """Categorical dtype of a column: the fixed vocabulary, or the observed values while unfitted."""
        vocab = self.categories.get(name) or []
        if not vocab and observed is not None:
            vocab = sorted({str(v) for v in observed.dropna().unique()})
        return pd.CategoricalDtype(categories=pd.Index(vocab, dtype=object), ordered=False)

    def fit_vocabulary(self, frame: pd.DataFrame) -> FeatureSpec:
        """A copy whose unfitted vocabularies are frozen to the values seen in ``frame``.

        Vocabularies already fixed (the stage names, or an earlier fit) are kept as
        they are, so refitting never re-numbers a category a model already knows.
        """
        cats = {k: list(v) for k, v in self.categories.items()}
        for name in self.categorical_names:
            if cats.get(name) or name not in frame:
                continue
            s = frame[name]
            if isinstance(s.dtype, pd.CategoricalDtype):
                s = s.cat.remove_unused_categories().cat.categories.to_series()
            cats[name] = sorted({str(v) for v in s.dropna().unique()})
        return FeatureSpec(columns=list(self.columns), categories=cats, stages=list(self.stages),
                           activity_types=list(self.activity_types), contact_roles=list(self.contact_roles),
                           evidence={k: list(v) for k, v in self.evidence.items()})

    def encode(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with its categoricals re-coded to this spec's vocabularies (unknown values -> NaN)."""
        out = frame.copy()
        for name in self.categorical_names:
            if name in out:
                values = out[name].astype(object)
                out[name] = pd.Categorical(values, dtype=self.dtype(name, values))
        return out

    def select(self, names: list[str]) -> FeatureSpec:
        """A spec keeping only some features (in the given order), e.g. to drop ones a model must not use."""
        by_name = {c.name: c for c in self.columns}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise ConfigError(f"feature spec has no features {unknown}; known: {sorted(by_name)}")
        spec = FeatureSpec.from_dict(self.to_dict())
        spec.columns = [by_name[n] for n in names]
        return spec

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, stored in the model bundle."""
        return {
            "columns": [c.to_dict() for c in self.columns],
            "categories": {k: list(v) for k, v in self.categories.items()},
            "stages": list(self.stages),
            "activity_types": list(self.activity_types),
            "contact_roles": list(self.contact_roles),
            "evidence": {k: list(v) for k, v in self.evidence.items()},
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FeatureSpec:
        """Inverse of :meth:`to_dict`, refusing a spec the pipeline cannot build."""
        try:
            spec = cls(
                columns=[FeatureInfo(**c) for c in raw["columns"]],
                categories={str(k): [str(x) for x in v] for k, v in raw["categories"].items()},
                stages=[str(s) for s in raw["stages"]],
                activity_types=[str(t) for t in raw["activity_types"]],
                contact_roles=[str(r) for r in raw["contact_roles"]],
                evidence={str(k): [str(x) for x in v] for k, v in raw["evidence"].items()},
            )
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"feature spec is incomplete or malformed: {exc}") from exc
        known = {c.name for c in default_columns(spec.stages, spec.activity_types, spec.evidence)}
        unknown = [c.name for c in spec.columns if c.name not in known]
        if unknown:
            raise ConfigError(f"feature spec names features this version cannot build: {unknown}")
        return spec
