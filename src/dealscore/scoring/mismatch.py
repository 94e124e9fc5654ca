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

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dealscore.scoring.columns import Columns
from dealscore.scoring.distinct import distinct
from dealscore.taxonomy import Stage, StageTaxonomy

#: Probability the real stage must have of lying on the far side of the declared one.
SIDE_PROBABILITY = 0.5


@dataclass(frozen=True)
class Evidence:
    """A key touchpoint: how to see it in the features and how to say it."""

    present: str
    absent: str
    test: Callable[[Columns], np.ndarray]


def _flag(name: str) -> Callable[[Columns], np.ndarray]:
    return lambda c: c.num(name) >= 1.0  # NaN (not known) compares False: no such touchpoint


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


#: Verdict codes of :func:`judge`'s arrays, and the words the result carries.
_UNKNOWN, _AHEAD, _BEHIND, _CONSISTENT = range(4)
_VERDICTS = ("unknown", "ahead_of_evidence", "behind_evidence", "consistent")


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


@functools.lru_cache(maxsize=16)
def _stage_evidence(stages: tuple[Stage, ...]) -> tuple[
        tuple[str, ...], dict[str, int], dict[str, list[Evidence]], dict[Callable[[Columns], np.ndarray], int]]:
    """Per taxonomy: stage names, their order, each stage's key evidence and one bit per distinct test."""
    names = tuple(s.name for s in stages)
    evidence = {s.name: [EVIDENCE[t] for t in s.key_touchpoints if t in EVIDENCE] for s in stages}
    tests = dict.fromkeys(ev.test for evs in evidence.values() for ev in evs)
    return names, {s: i for i, s in enumerate(names)}, evidence, {t: j for j, t in enumerate(tests)}


def judge(
    cols: Columns, stage_proba: np.ndarray, taxonomy: StageTaxonomy, *, max_facts: int = 2
) -> MismatchResult:
    """Verdict and one-line explanation for every row.

    ``stage_proba`` is (n, n_stages) in taxonomy order, as the stage model returns it.
    A row's text depends only on its declared and inferred stage, the rounded
    probability, the verdict and which key touchpoints it has: a batch of a
    hundred thousand snapshots holds a few hundred such cases, so each case is
    worded once and the rows take their case's text.
    """
    names, order, evidence, bit = _stage_evidence(taxonomy.stages)
    proba = np.asarray(stage_proba, dtype=float).reshape(cols.n, len(names))
    best = proba.argmax(axis=1)
    best_p = proba[np.arange(cols.n), best]
    declared = cols.text("declared_stage")
    k = np.fromiter((order.get(d, -1) for d in declared), dtype=np.int64, count=cols.n)
    known = k >= 0
    kk = np.where(known, k, 0)
    cum = np.cumsum(proba, axis=1)
    rows = np.arange(cols.n)
    below = np.where(kk > 0, cum[rows, kk - 1], 0.0)  # kk - 1 = -1 only where masked
    above = 1.0 - cum[rows, kk]
    verdict = np.where(~known, _UNKNOWN, np.where((best < kk) & (below >= SIDE_PROBABILITY), _AHEAD,
                       np.where((best > kk) & (above >= SIDE_PROBABILITY), _BEHIND, _CONSISTENT)))
    flags = np.zeros(cols.n, dtype=np.int64)
    named = (verdict == _AHEAD) | (verdict == _BEHIND)  # only these name touchpoints
    if named.any():
        for test, j in bit.items():
            flags |= np.asarray(test(cols) & named, dtype=np.int64) << j
    pct = np.rint(100 * best_p).astype(np.int64)  # half to even, as round() words a share
    # one integer per case (pct < 2**7, verdict < 2**2, stage indices < 2**8)
    case = ((((flags << 8 | kk) << 8 | best) << 2 | verdict) << 7) | pct
    unique, inverse = distinct(case)
    worded = np.empty(len(unique), dtype=object)
    for c, key in enumerate(unique):
        p, v, b_i, d_i, f = key & 127, key >> 7 & 3, key >> 9 & 255, key >> 17 & 255, key >> 25
        inf, share = names[b_i], f"{p}%"
        d = names[d_i]
        if v == _UNKNOWN:
            worded[c] = f"no declared stage to compare with; the evidence points to {inf} ({share})"
        elif v == _AHEAD:
            missing = [ev.absent for s in names[b_i + 1: d_i + 1] for ev in evidence[s]
                       if not f >> bit[ev.test] & 1]
            missing = list(dict.fromkeys(missing))[:max_facts]
            why = f"but {_join(missing)}" if missing else f"but the touchpoints look like {inf}"
            worded[c] = f"recorded as {d}, {why}; the evidence points to {inf} ({share})"
        elif v == _BEHIND:
            done = [ev.present for s in reversed(names[d_i + 1: b_i + 1]) for ev in evidence[s]
                    if f >> bit[ev.test] & 1]
            done = list(dict.fromkeys(done))[:max_facts]
            why = f"but {_join(done)}" if done else f"but the touchpoints look like {inf}"
            worded[c] = f"recorded as {d}, {why}; the evidence points to {inf} ({share})"
        elif b_i == d_i:
            worded[c] = f"recorded as {d}, and the evidence agrees ({inf}, {share})"
        else:
            worded[c] = (f"recorded as {d}; the evidence leans to {inf} ({share}) "
                         f"but not clearly enough to call the stage wrong")
    texts = worded[inverse]
    verdicts = np.array(_VERDICTS, dtype=object)[verdict]
    inferred = np.array(names, dtype=object)[best]
    return MismatchResult(inferred, best_p, verdicts, texts)
