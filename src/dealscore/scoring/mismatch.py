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
from typing import Any

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


#: Per taxonomy (by identity, holding it so the id is not reused): names, order, key evidence, test bits.
_STAGE_EVIDENCE: dict[int, tuple[StageTaxonomy, tuple[Any, ...]]] = {}
#: Up to this many rows each row is worded on its own; more are grouped into distinct cases first.
SMALL_BLOCK = 64


def _stage_evidence(taxonomy: StageTaxonomy) -> tuple[
        tuple[str, ...], dict[str, int], dict[str, list[Evidence]], dict[Callable[[Columns], np.ndarray], int]]:
    """Per taxonomy: stage names, their order, each stage's key evidence and one bit per distinct test."""
    hit = _STAGE_EVIDENCE.get(id(taxonomy))
    if hit is not None and hit[0] is taxonomy:
        return hit[1]  # type: ignore[return-value]
    names = tuple(s.name for s in taxonomy.stages)
    evidence = {s.name: [EVIDENCE[t] for t in s.key_touchpoints if t in EVIDENCE] for s in taxonomy.stages}
    tests = dict.fromkeys(ev.test for evs in evidence.values() for ev in evs)
    out = (names, {s: i for i, s in enumerate(names)}, evidence, {t: j for j, t in enumerate(tests)})
    if len(_STAGE_EVIDENCE) > 16:
        _STAGE_EVIDENCE.clear()
    _STAGE_EVIDENCE[id(taxonomy)] = (taxonomy, out)
    return out


def _verdict(k: int, b: int, below: float, above: float) -> int:
    """The verdict rule of the module docstring, for one case: declared stage ``k`` (-1: none or unknown),
    inferred stage ``b``, and the probability the real stage lies below / above the declared one."""
    if k < 0:
        return _UNKNOWN
    if b < k and below >= SIDE_PROBABILITY:
        return _AHEAD
    if b > k and above >= SIDE_PROBABILITY:
        return _BEHIND
    return _CONSISTENT


def judge(
    cols: Columns, stage_proba: np.ndarray, taxonomy: StageTaxonomy, *, max_facts: int = 2
) -> MismatchResult:
    """Verdict and one-line explanation for every row.

    ``stage_proba`` is (n, n_stages) in taxonomy order, as the stage model returns it.
    A row's verdict and text depend only on its case: declared and inferred stage,
    which side of the declared stage holds half the probability, the rounded
    probability and which key touchpoints it has. A batch of a hundred thousand
    snapshots holds a few hundred cases, so each case is judged and worded once and
    the rows take their case's result; a few rows (the API's one deal) are judged
    one by one, which costs less than grouping them.
    """
    names, order, evidence, bit = _stage_evidence(taxonomy)
    n = cols.n
    proba = np.asarray(stage_proba, dtype=float).reshape(n, len(names))
    best = proba.argmax(axis=1)
    cum = np.cumsum(proba, axis=1)
    declared = cols.text("declared_stage")

    def word(k: int, b: int, v: int, p: int, has: Callable[[Evidence], bool]) -> str:
        # p is the rounded percentage: 100 stands for at least 99.5%, never a certainty (percent_text's rule)
        inf, share, d = names[b], ">99%" if p >= 100 else f"{p}%", names[k] if k >= 0 else None
        if v == _UNKNOWN:
            return f"no declared stage to compare with; the evidence points to {inf} ({share})"
        if v == _AHEAD:
            missing = [ev.absent for s in names[b + 1: k + 1] for ev in evidence[s] if not has(ev)]
            missing = list(dict.fromkeys(missing))[:max_facts]
            why = f"but {_join(missing)}" if missing else f"but the touchpoints look like {inf}"
            return f"recorded as {d}, {why}; the evidence points to {inf} ({share})"
        if v == _BEHIND:
            done = [ev.present for s in reversed(names[k + 1: b + 1]) for ev in evidence[s] if has(ev)]
            done = list(dict.fromkeys(done))[:max_facts]
            why = f"but {_join(done)}" if done else f"but the touchpoints look like {inf}"
            return f"recorded as {d}, {why}; the evidence points to {inf} ({share})"
        if b == k:
            return f"recorded as {d}, and the evidence agrees ({inf}, {share})"
        return (f"recorded as {d}; the evidence leans to {inf} ({share}) "
                f"but not clearly enough to call the stage wrong")

    verdicts, texts = np.empty(n, dtype=object), np.empty(n, dtype=object)
    if n <= SMALL_BLOCK:
        tests: dict[Any, np.ndarray] = {}

        def has_in(i: int) -> Callable[[Evidence], bool]:
            def has(ev: Evidence) -> bool:
                if ev.test not in tests:
                    tests[ev.test] = ev.test(cols)
                return bool(tests[ev.test][i])
            return has

        for i, (d, b, row, probs) in enumerate(zip(declared.tolist(), best.tolist(), cum.tolist(), proba.tolist(),
                                                   strict=True)):
            k = order.get(d, -1)
            below, above = (row[k - 1] if k > 0 else 0.0), (1.0 - row[k] if k >= 0 else 0.0)
            v = _verdict(k, b, below, above)
            p = round(100 * probs[b])
            verdicts[i], texts[i] = _VERDICTS[v], word(k, b, v, p, has_in(i))
    else:
        k = np.fromiter((order.get(d, -1) for d in declared), dtype=np.int64, count=n)
        rows, kk = np.arange(n), np.maximum(k, 0)
        below_ok = (k > 0) & (cum[rows, kk - 1] >= SIDE_PROBABILITY)  # kk - 1 = -1 only where k <= 0
        above_ok = 1.0 - cum[rows, kk] >= SIDE_PROBABILITY
        pct = np.rint(100 * proba[rows, best]).astype(np.int64)  # half to even, as round() words a share
        flags = np.zeros(n, dtype=np.int64)
        for test, j in bit.items():
            flags |= np.asarray(test(cols), dtype=np.int64) << j
        # one integer per case, from the lowest bit: pct (7 bits, < 2**7), above_ok, below_ok, best (8 bits),
        # declared stage + 1 (8 bits; 0: none), then one bit per key touchpoint test
        case = (((((flags << 8 | (k + 1)) << 8 | best) << 1 | below_ok) << 1 | above_ok) << 7) | pct
        unique, inverse = np.unique(case, return_inverse=True)
        judged = []
        for key in unique.tolist():
            f, kc, b = key >> 25, (key >> 17 & 255) - 1, key >> 9 & 255
            v = _verdict(kc, b, SIDE_PROBABILITY if key >> 8 & 1 else 0.0, SIDE_PROBABILITY if key >> 7 & 1 else 0.0)
            judged.append((_VERDICTS[v], word(kc, b, v, key & 127, lambda ev, f=f: bool(f >> bit[ev.test] & 1))))
        inverse = inverse.reshape(-1)
        verdicts[:] = np.array([v for v, _ in judged], dtype=object)[inverse]
        texts[:] = np.array([t for _, t in judged], dtype=object)[inverse]
    best_p = proba[np.arange(n), best]
    return MismatchResult(np.array(names, dtype=object)[best], best_p, verdicts, texts)
