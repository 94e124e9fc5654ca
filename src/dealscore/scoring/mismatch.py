"""Declared stage versus the stage the evidence points to, with a one-line why.

The verdict compares the CRM's stage with the stage model's inference, and the
explanation names the touchpoints that are missing (ahead of evidence) or that
already happened (behind), read from the taxonomy's ``key_touchpoints`` so that
a renamed or added stage is explained with its own evidence.

Verdict rule (documented in docs/scoring.md): let *inferred* be the most likely
real stage. The deal is **ahead of evidence** when the inferred stage comes
before the declared one *and* the model gives at least 50% to the real stage
being earlier than declared; **behind evidence** symmetrically; otherwise
**consistent**. Requiring both keeps the verdict stable when the probabilities
are spread over neighbouring stages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dealscore.scoring.columns import Columns
from dealscore.taxonomy import StageTaxonomy

#: Probability the real stage must have of lying on the far side of the declared one.
SIDE_PROBABILITY = 0.5


@dataclass(frozen=True)
class Evidence:
    """A key touchpoint: how to see it in the features and how to say it."""

    present: str
    absent: str
    test: Callable[[Columns], np.ndarray]


def _flag(name: str) -> Callable[[Columns], np.ndarray]:
    return lambda c: np.nan_to_num(c.num(name), nan=0.0) >= 1.0


def _seen(name: str) -> Callable[[Columns], np.ndarray]:
    return lambda c: ~np.isnan(c.num(name))


#: Evidence tokens used by ``key_touchpoints`` in the taxonomy YAML.
EVIDENCE: dict[str, Evidence] = {
    "outbound_touch": Evidence("outreach has started", "no touchpoint has been logged", _seen("days_since_last_touch")),
    "inbound_reply": Evidence("the customer has replied", "the customer has never replied",
                              _seen("days_since_last_inbound")),
    "first_meeting": Evidence("a meeting has happened", "no meeting has happened", _flag("has_meeting")),
    "meeting": Evidence("a meeting has happened", "no meeting has happened", _flag("has_meeting")),
    "decision_maker": Evidence("a decision maker is engaged", "no decision maker has been engaged",
                               _flag("decision_maker_engaged")),
    "champion": Evidence("a champion is engaged", "no champion has been engaged", _flag("champion_engaged")),
    "demo": Evidence("a demo has been given", "no demo has been given", _flag("has_demo")),
    "proposal": Evidence("a proposal has been sent", "no proposal has been sent", _flag("has_proposal")),
    "pricing": Evidence("pricing has been discussed", "pricing has not been discussed", _flag("pricing_discussed")),
    "contract": Evidence("a contract has been sent", "no contract has been sent", _flag("has_contract")),
}


@dataclass(frozen=True)
class MismatchResult:
    """Verdicts and explanations for a batch of deals (arrays aligned with the frame)."""

    inferred_stage: np.ndarray
    inferred_probability: np.ndarray
    verdict: np.ndarray
    explanation: np.ndarray


def _pct(p: float) -> str:
    return f"{round(100 * p)}%"


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def judge(
    cols: Columns, stage_proba: np.ndarray, taxonomy: StageTaxonomy, *, max_facts: int = 2
) -> MismatchResult:
    """Verdict and one-line explanation for every row.

    ``stage_proba`` is (n, n_stages) in taxonomy order, as the stage model returns it.
    """
    names = taxonomy.names
    proba = np.asarray(stage_proba, dtype=float).reshape(cols.n, len(names))
    best = proba.argmax(axis=1)
    best_p = proba[np.arange(cols.n), best]
    declared = cols.text("declared_stage")
    order = {s: i for i, s in enumerate(names)}
    evidence = {s.name: [EVIDENCE[t] for t in s.key_touchpoints if t in EVIDENCE] for s in taxonomy.stages}
    tests: dict[int, np.ndarray] = {}

    def has(ev: Evidence) -> np.ndarray:
        key = id(ev.test)
        if key not in tests:
            tests[key] = ev.test(cols)
        return tests[key]

    cum = np.cumsum(proba, axis=1)
    verdicts = np.empty(cols.n, dtype=object)
    texts = np.empty(cols.n, dtype=object)
    for i in range(cols.n):
        inf = names[best[i]]
        d = declared[i]
        if d is None or d not in order:
            verdicts[i] = "unknown"
            texts[i] = f"no declared stage to compare with; the evidence points to {inf} ({_pct(best_p[i])})"
            continue
        k = order[d]
        below = cum[i, k - 1] if k > 0 else 0.0
        above = 1.0 - cum[i, k]
        if best[i] < k and below >= SIDE_PROBABILITY:
            verdicts[i] = "ahead_of_evidence"
            missing = [ev.absent for s in names[best[i] + 1 : k + 1] for ev in evidence[s] if not has(ev)[i]]
            missing = list(dict.fromkeys(missing))[:max_facts]
            why = f"but {_join(missing)}" if missing else f"but the touchpoints look like {inf}"
            texts[i] = f"recorded as {d}, {why}; the evidence points to {inf} ({_pct(best_p[i])})"
        elif best[i] > k and above >= SIDE_PROBABILITY:
            verdicts[i] = "behind_evidence"
            done = [ev.present for s in reversed(names[k + 1 : best[i] + 1]) for ev in evidence[s] if has(ev)[i]]
            done = list(dict.fromkeys(done))[:max_facts]
            why = f"but {_join(done)}" if done else f"but the touchpoints look like {inf}"
            texts[i] = f"recorded as {d}, {why}; the evidence points to {inf} ({_pct(best_p[i])})"
        else:
            verdicts[i] = "consistent"
            if best[i] == k:
                texts[i] = f"recorded as {d}, and the evidence agrees ({inf}, {_pct(best_p[i])})"
            else:
                texts[i] = (
                    f"recorded as {d}; the evidence leans to {inf} ({_pct(best_p[i])}) "
                    f"but not clearly enough to call the stage wrong"
                )
    inferred = np.array([names[j] for j in best], dtype=object)
    return MismatchResult(inferred, best_p, verdicts, texts)
