"""Risk patterns a sales manager looks for, each with its evidence and threshold.

Every rule reads the deal's features (the same columns the model saw) and,
where history can say what is normal, a threshold learned from won deals of the
same declared stage (:mod:`dealscore.scoring.norms`). Rules are array
expressions so that one deal and a whole pipeline go through the same code.

The three episode warnings (stalled, gone quiet, ghosting) read the episode
model when the bundle has one (:mod:`dealscore.models.episodes`): the
probability, from the deal's touch pattern up to the snapshot, that it is stalled
or that its customer went quiet. One measure with one threshold cannot tell a
stalled deal from a slow healthy one; the model compares the deal's recent pace
with the paces the company's own deals show in each state.

The stage a rule checks against is the **declared** stage: the warnings speak
to what the rep has recorded ("in proposal, yet pricing was never discussed").
When the CRM gives no stage the inferred one is used instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dealscore.models.episodes import STATES
from dealscore.scoring.columns import Columns, nan_to_zero
from dealscore.scoring.norms import StageNorms
from dealscore.scoring.result import DealWarning
from dealscore.scoring.track_record import STALLED_MAX_UNANSWERED, WarningThresholds, warning_measures
from dealscore.taxonomy import StageTaxonomy
from dealscore.wording import percent_text

SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}

#: Stable warning codes, in the order they are listed when of equal severity.
WARNING_CODES = (
    "stage_ahead_of_evidence",
    "stalled_in_stage",
    "gone_quiet",
    "ghosting",
    "no_decision_maker",
    "single_threaded",
    "pricing_not_discussed",
    "close_date_passed",
    "close_date_pushed",
)
_CODE_RANK = {c: j for j, c in enumerate(WARNING_CODES)}


@dataclass(frozen=True)
class WarningRules:
    """Fixed thresholds for the rules history cannot calibrate (documented in docs/scoring.md)."""

    #: outbound touches in a row without a customer reply that count as ghosting
    unanswered_touches: int = 3
    #: ... in the earliest stage, where outreach without reply is the normal state
    unanswered_touches_first_stage: int = 5
    #: contacts below which a deal from discovery on is single-threaded
    min_contacts: int = 2
    #: pushes of the expected close date that make a pattern
    close_date_pushes: int = 2
    #: days past the close date after which "passed" becomes high severity
    close_date_overdue_high: int = 30
    #: how many times the learned limit a quiet/stalled deal must exceed to be high severity
    high_ratio: float = 2.0
    #: a silence counts as unusual beyond this many times the 90th-percentile gap between touchpoints
    #: of won deals (silence *so far* at a random moment runs longer than a typical completed gap)
    quiet_factor: float = 2.0
    #: with an episode model: an episode warning fires when the deal is at least this likely to be in the
    #: episode (stalled; stalled or quiet; quiet), and is high severity from ``episode_high`` on
    episode_probability: float = 0.7
    episode_high: float = 0.95


_STALLED, _QUIET = STATES.index("stalled"), STATES.index("quiet")


def _stage_order_by_role(taxonomy: StageTaxonomy, name: str, touchpoint: str) -> int | None:
    """0-based order of the stage named ``name``, else of the first stage whose evidence is ``touchpoint``."""
    for i, s in enumerate(taxonomy.stages):
        if s.name == name:
            return i
    for i, s in enumerate(taxonomy.stages):
        if touchpoint in s.key_touchpoints:
            return i
    return None


_PIVOTS: dict[int, tuple[StageTaxonomy, tuple[dict[str, int], int | None, int | None]]] = {}


def _pivots(taxonomy: StageTaxonomy) -> tuple[dict[str, int], int | None, int | None]:
    """Stage → order, and the orders of the discovery and proposal pivots (once per taxonomy object)."""
    got = _PIVOTS.get(id(taxonomy))
    if got is not None and got[0] is taxonomy:
        return got[1]
    value = ({s: i for i, s in enumerate(taxonomy.names)},
             _stage_order_by_role(taxonomy, "discovery", "decision_maker"),
             _stage_order_by_role(taxonomy, "proposal", "proposal"))
    if len(_PIVOTS) > 64:
        _PIVOTS.clear()
    _PIVOTS[id(taxonomy)] = (taxonomy, value)
    return value


def _days(x: float) -> str:
    n = round(x)
    return "1 day" if n == 1 else f"{n} days"


def _touches(x: float, kind: str = "") -> str:
    """``1 outbound touch``, ``3 outbound touches``: a count of touchpoints in words."""
    n = int(x)
    return f"{n} {kind}touch{'' if n == 1 else 'es'}"


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


class WarningHits:
    """The warnings found in a block of deals, materialised only when asked.

    A batch written to a file needs only the codes of each deal; the API needs
    every warning with its evidence. Rules record ``(rows, code, severities, make)`` per firing, and the
    text is built by ``make(i)`` when :meth:`lists` is called. Rows are kept as
    arrays until a per-row list is asked for: a backtest's hundred thousand
    snapshots need only :meth:`joined_codes`, which words each distinct
    combination of warnings once.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self._fired: list[tuple[np.ndarray, str, np.ndarray, Callable[[int], DealWarning]]] = []
        self._hits: list[list[tuple[str, str, Callable[[int], DealWarning]]]] | None = None

    def add(self, rows: np.ndarray, code: str, severity: np.ndarray | str | Callable[[], np.ndarray],
            make: Callable[[int], DealWarning]) -> None:
        """Record the rule ``code`` firing on ``rows`` (severity per row or one for all).

        ``severity`` may be a function giving the per-row severities, called only when
        the rule fired (most rules fire on no row of a one-deal block).
        """
        if not len(rows):
            return
        if callable(severity):
            severity = severity()
        sev = np.full(len(rows), severity, dtype=object) if isinstance(severity, str) else np.asarray(severity)
        if len(sev) != len(rows):
            raise ValueError(f"rule {code}: {len(sev)} severities for {len(rows)} rows")
        self._fired.append((np.asarray(rows), code, sev, make))
        self._hits = None

    @staticmethod
    def _order(hit: tuple[str, str, Callable[[int], DealWarning]] | tuple[str, str]) -> tuple[int, int]:
        """Most severe first, then in the order of ``WARNING_CODES`` (a stable sort keeps the rules' order)."""
        return SEVERITY_ORDER[hit[1]], _CODE_RANK.get(hit[0], 99)

    def _per_row(self) -> list[list[tuple[str, str, Callable[[int], DealWarning]]]]:
        if self._hits is None:
            hits: list[list[tuple[str, str, Callable[[int], DealWarning]]]] = [[] for _ in range(self.n)]
            for rows, code, sev, make in self._fired:
                for i, v in zip(rows.tolist(), sev.tolist(), strict=True):
                    hits[i].append((code, v, make))
            for row in hits:
                if len(row) > 1:
                    row.sort(key=self._order)
            self._hits = hits
        return self._hits

    def lists(self) -> list[list[DealWarning]]:
        """Every row's warnings with evidence and threshold, most severe first."""
        return [[make(i) for _, _, make in hits] for i, hits in enumerate(self._per_row())]

    def codes(self) -> list[list[str]]:
        """Every row's warning codes, in the order of :meth:`lists`."""
        return [[code for code, _, _ in hits] for hits in self._per_row()]

    def joined_codes(self, sep: str = "; ") -> tuple[np.ndarray, np.ndarray]:
        """Per row: how many warnings fired, and their codes joined by ``sep`` in the order of :meth:`lists`.

        Each row's combination of (rule, severity) is packed into one integer, two
        bits per firing, and each distinct combination is ordered and joined once.
        """
        if len(self._fired) > 31:  # more firings than an int64 packs: row by row
            codes = self.codes()
            return (np.array([len(c) for c in codes], dtype=np.int64),
                    np.array([sep.join(c) for c in codes], dtype=object))
        levels = tuple(SEVERITY_ORDER)
        packed = np.zeros(self.n, dtype=np.int64)
        for j, (rows, _, sev, _) in enumerate(self._fired):
            level = np.zeros(len(sev), dtype=np.int64)
            for k, name in enumerate(levels, start=1):
                level[sev == name] = k
            packed[rows] |= level << (2 * j)
        unique, inverse = np.unique(packed, return_inverse=True)
        counts, texts = np.zeros(len(unique), dtype=np.int64), np.empty(len(unique), dtype=object)
        for c, key in enumerate(unique.tolist()):
            hits = [(code, levels[(key >> 2 * j & 3) - 1]) for j, (_, code, _, _) in enumerate(self._fired)
                    if key >> 2 * j & 3]
            hits.sort(key=self._order)
            counts[c], texts[c] = len(hits), sep.join(code for code, _ in hits)
        return counts[inverse.reshape(-1)], texts[inverse.reshape(-1)]


def detect_warnings(
    cols: Columns, norms: StageNorms, taxonomy: StageTaxonomy, **options: Any
) -> list[list[DealWarning]]:
    """The warnings of every row of a feature frame, most severe first (options as :func:`find_warnings`)."""
    return find_warnings(cols, norms, taxonomy, **options).lists()


def find_warnings(
    cols: Columns,
    norms: StageNorms,
    taxonomy: StageTaxonomy,
    *,
    inferred_stage: Sequence[str | None] | None = None,
    mismatch_verdict: Sequence[str] | None = None,
    mismatch_text: Sequence[str] | None = None,
    rules: WarningRules | None = None,
    touchpoints: bool = True,
    thresholds: WarningThresholds | None = None,
    episodes: np.ndarray | None = None,
) -> WarningHits:
    """Which rules fire on which rows; the texts are built lazily by :class:`WarningHits`.

    ``touchpoints=False`` says the CRM records no touchpoints at all (an export of
    deals and stages only): the rules that read touchpoints would then flag every
    deal, so only the stage and close-date rules run.

    ``thresholds``: the episode warnings' thresholds learned per declared stage for
    a stated precision (:mod:`dealscore.scoring.track_record`); in a stage where
    none was learned the fixed rule applies.

    ``episodes``: per row, the episode model's state probabilities (columns as
    :data:`dealscore.models.episodes.STATES`; NaN before the customer's first
    reply). Given, it decides the stalled, gone-quiet and ghosting warnings: they
    fire at ``rules.episode_probability`` and never on a deal whose customer has
    not replied yet (a prospect has no episode to be in).
    """
    r = rules or WarningRules()
    hits = WarningHits(cols.n)
    declared = cols.text("declared_stage")
    stage = np.array(
        [d if d is not None else (inferred_stage[i] if inferred_stage is not None else None) for i, d in
         enumerate(declared)],
        dtype=object,
    )
    index, discovery, proposal = _pivots(taxonomy)
    order = np.array([index.get(s, -1) if s is not None else -1 for s in stage], dtype=np.int64)
    real = (np.array([index.get(s, -1) if s is not None else -1 for s in inferred_stage], dtype=np.int64)
            if inferred_stage is not None else None)
    ctx = _Context(cols, norms, taxonomy, r, stage, order, discovery, proposal, thresholds or WarningThresholds(),
                   episodes, real)

    # stage ahead of evidence (from the stage model's verdict)
    if mismatch_verdict is not None and mismatch_text is not None:
        rows = _rows(np.asarray(mismatch_verdict, dtype=object) == "ahead_of_evidence")
        hits.add(rows, "stage_ahead_of_evidence", "high", lambda i: DealWarning(
            code="stage_ahead_of_evidence", title="Stage ahead of the evidence",
            evidence=str(mismatch_text[i]).capitalize(),
            threshold="the stage model gives at least 50% to an earlier real stage", severity="high",
        ))
    if episodes is not None and touchpoints:
        _episodes(ctx, hits, episodes)
    else:
        _stalled(ctx, hits)
        if touchpoints:
            _gone_quiet_and_ghosting(ctx, hits)
    if touchpoints:
        _stakeholders_and_pricing(ctx, hits)
    _close_date(ctx, hits)
    return hits


@dataclass
class _Context:
    """What every rule reads: the columns, the norms, each row's stage and the pivot stages."""

    cols: Columns
    norms: StageNorms
    taxonomy: StageTaxonomy
    r: WarningRules
    stage: np.ndarray
    order: np.ndarray
    discovery: int | None
    proposal: int | None
    thresholds: WarningThresholds
    episodes: np.ndarray | None = None
    #: per row, the order of the real stage the stage model inferred (None: not given, the declared one stands in)
    real_order: np.ndarray | None = None
    _measures: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
    _limits: dict[str, np.ndarray] = field(default_factory=dict)

    def limit(self, code: str) -> np.ndarray:
        """Per row: ``code``'s learned threshold in its stage, NaN where the fixed rule applies."""
        got = self._limits.get(code)
        if got is None:
            got = self._limits[code] = self.thresholds.limits(code, self.stage)
        return got

    def learned(self, code: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``code``'s learned firing mask, where a learned threshold applies, and the measure per row."""
        limit = self.limit(code)
        applies = ~np.isnan(limit)
        if not applies.any():  # no learned threshold for these rows: the fixed rule, nothing more to compute
            return applies, applies, limit
        if self._measures is None:
            self._measures = warning_measures(self.cols)
        value, eligible = self._measures[code]
        return applies & eligible & (value >= np.where(applies, limit, np.inf)), applies, value

    def record(self, code: str, i: int, what: str) -> tuple[str, float | None, int | None]:
        """The track-record sentence, precision and support of row ``i``'s learned threshold (else empty)."""
        t = self.thresholds.get(code, self.stage[i])
        if t is None:
            return "", None, None
        return f"; {t.record(what)}", t.precision, t.support


def _learned_text(x: _Context, code: str, i: int) -> str:
    """The learned threshold of row ``i`` in words with its provenance (for the ``threshold`` field)."""
    t = x.thresholds.get(code, x.stage[i])
    assert t is not None
    target = f"{x.thresholds.target:.0%}" if x.thresholds.target is not None else "the stated precision"
    return f"learned from this company's closed deals in {x.stage[i]} for a precision of at least {target}"


def _rows(mask: np.ndarray) -> np.ndarray:
    """Positions where a rule fires (``np.flatnonzero`` for the 1-D masks rules build, minus its wrapper)."""
    return mask.nonzero()[0]


def _sev(high: np.ndarray) -> np.ndarray:
    return np.where(high, "high", "medium")


def _stalled(x: _Context, hits: WarningHits) -> None:
    """Stalled in stage: longer than won deals needed."""
    days_in_stage = x.cols.num("days_in_stage")
    stall = {s: x.norms.stall_days(s) for s in set(x.stage)}
    limit = np.array([stall[s].value for s in x.stage], dtype=float)
    fired, applies, silent = x.learned("stalled_in_stage")
    rows = _rows(np.where(applies, fired, days_in_stage > limit))
    lim = np.where(applies, x.limit("stalled_in_stage"), limit)
    measure = np.where(applies, silent, days_in_stage)

    def make(i: int) -> DealWarning:
        nm, s = stall[x.stage[i]], x.stage[i]
        med = x.norms.median_days(s)
        typical = f"; won deals needed a median of {_days(med)}" if med else ""
        record, precision, support = x.record("stalled_in_stage", i, "stalled warnings")
        if applies[i]:
            evidence = (f"no touchpoint in {_days(silent[i])} and nobody chasing the customer; "
                        f"{_days(days_in_stage[i])} in {s}")
            threshold = (f"no touchpoint for {_days(lim[i])} or more, with at most {STALLED_MAX_UNANSWERED} unanswered "
                         f"outbound touches ({_learned_text(x, 'stalled_in_stage', i)}){record}")
        else:
            evidence = f"{_days(days_in_stage[i])} in {s}{typical}"
            threshold = f"more than {_days(nm.value)} ({nm.source('90th percentile of days in stage', s)})"
        return DealWarning(
            code="stalled_in_stage", title=f"Stalled in {s}", evidence=evidence, threshold=threshold,
            severity="high" if measure[i] > x.r.high_ratio * lim[i] else "medium", precision=precision,
            support=support,
        )
    hits.add(rows, "stalled_in_stage", lambda: _sev(measure[rows] > x.r.high_ratio * lim[rows]), make)


def _gone_quiet_and_ghosting(x: _Context, hits: WarningHits) -> None:
    """No touchpoint for longer than usual; outreach without replies while the customer stays silent."""
    r, cols = x.r, x.cols
    age = cols.num("deal_age_days")
    since_touch = cols.num("days_since_last_touch")
    quiet = np.where(np.isnan(since_touch), age, since_touch)
    gap = {s: x.norms.gap_days(s) for s in set(x.stage)}
    gap_limit = r.quiet_factor * np.array([gap[s].value for s in x.stage], dtype=float)
    times = "twice" if r.quiet_factor == 2 else f"{r.quiet_factor:g}×"
    fired, q_applies, no_reply = x.learned("gone_quiet")
    rows = _rows(np.where(q_applies, fired, quiet > gap_limit))
    q_lim = np.where(q_applies, x.limit("gone_quiet"), gap_limit)
    q_measure = np.where(q_applies, no_reply, quiet)

    def make_quiet(i: int) -> DealWarning:
        record, precision, support = x.record("gone_quiet", i, "gone-quiet warnings")
        if q_applies[i]:
            ev = (f"No reply from the customer in {_days(no_reply[i])}" if not np.isnan(cols.num(
                "days_since_last_inbound")[i]) else f"The customer has not replied since the deal was opened "
                  f"{_days(no_reply[i])} ago")
            threshold = (f"{_days(q_lim[i])} or more without a customer reply "
                         f"({_learned_text(x, 'gone_quiet', i)}){record}")
        else:
            ev = (f"No touchpoint in {_days(quiet[i])}" if not np.isnan(since_touch[i])
                  else f"No touchpoint since the deal was opened {_days(quiet[i])} ago")
            threshold = (f"more than {_days(gap_limit[i])} without a touchpoint: {times} the "
                         f"{gap[x.stage[i]].source('90th percentile gap between touchpoints', x.stage[i])}")
        return DealWarning(
            code="gone_quiet", title="Gone quiet", evidence=ev, threshold=threshold,
            severity="high" if q_measure[i] > r.high_ratio * q_lim[i] else "medium", precision=precision,
            support=support,
        )
    hits.add(rows, "gone_quiet", lambda: _sev(q_measure[rows] > r.high_ratio * q_lim[rows]), make_quiet)

    unanswered = nan_to_zero(cols.num("n_outbound_unanswered"))
    since_reply = cols.num("days_since_last_inbound")
    silent = np.where(np.isnan(since_reply), age, since_reply)
    need = np.where(x.order <= 0, r.unanswered_touches_first_stage, r.unanswered_touches)
    fired, g_applies, _ = x.learned("ghosting")
    ghosts = _rows(np.where(g_applies, fired, (unanswered >= need) & ~(silent <= gap_limit)))
    need = np.where(g_applies, x.limit("ghosting"), need)

    def make_ghost(i: int) -> DealWarning:
        k = int(unanswered[i])
        last = ("the customer has never replied" if np.isnan(since_reply[i])
                else f"the customer last replied {_days(since_reply[i])} ago")
        record, precision, support = x.record("ghosting", i, "ghosting warnings")
        threshold = (f"{int(np.ceil(need[i]))} or more unanswered outbound touches in a row "
                     f"({_learned_text(x, 'ghosting', i)}){record}" if g_applies[i] else
                     f"{int(need[i])} or more unanswered outbound touches in a row (default) and no reply for "
                     f"more than {_days(gap_limit[i])} ({times} the usual gap, learned as for gone quiet)")
        return DealWarning(
            code="ghosting", title="Outreach without replies",
            evidence=f"{k} outbound touches since the last customer reply; {last}", threshold=threshold,
            severity="high" if k >= 2 * need[i] else "medium", precision=precision, support=support,
        )
    hits.add(ghosts, "ghosting", lambda: _sev(unanswered[ghosts] >= 2 * need[ghosts]), make_ghost)


#: The episode warnings the model decides: code, the states whose probability is summed, and the words.
EPISODE_WARNINGS = (
    ("stalled_in_stage", (_STALLED,), "stalled"),
    ("gone_quiet", (_STALLED, _QUIET), "stalled or gone quiet"),
    ("ghosting", (_QUIET,), "ghosted (the customer stopped answering)"),
)


_RECORD_WHAT = {"stalled_in_stage": "stalled warnings", "gone_quiet": "gone-quiet warnings",
                "ghosting": "ghosting warnings"}


def _episodes(x: _Context, hits: WarningHits, episodes: np.ndarray) -> None:
    """Stalled, gone quiet, ghosting: the episode model's probability on the snapshot's day, at one threshold."""
    r, cols = x.r, x.cols
    since_touch, since_reply = cols.num("days_since_last_touch"), cols.num("days_since_last_inbound")
    days_in_stage = cols.num("days_in_stage")
    unanswered = nan_to_zero(cols.num("n_outbound_unanswered"))
    n_out, n_in = cols.num("n_outbound_30d"), cols.num("n_inbound_30d")
    known = ~np.isnan(episodes).any(axis=1)
    filled = np.where(known[:, None], episodes, 0.0)
    titles = {"stalled_in_stage": lambda i: f"Stalled in {x.stage[i]}", "gone_quiet": lambda i: "Gone quiet",
              "ghosting": lambda i: "Outreach without replies"}

    def pace(i: int) -> str:
        parts = []
        if not np.isnan(n_out[i]) and not np.isnan(n_in[i]):
            parts.append(f"{_touches(n_out[i])} from the rep and {int(n_in[i])} from the customer in 30 days")
        if not np.isnan(since_reply[i]):
            parts.append(f"the customer last replied {_days(since_reply[i])} ago")
        if not np.isnan(since_touch[i]):
            parts.append(f"the last touchpoint was {_days(since_touch[i])} ago")
        if unanswered[i] >= 1:
            parts.append(f"{_touches(unanswered[i], 'outbound ')} since the last reply")
        if x.stage[i] is not None and not np.isnan(days_in_stage[i]):
            parts.append(f"{_days(days_in_stage[i])} in {x.stage[i]}")
        return "; ".join(parts)

    for code, states, words in EPISODE_WARNINGS:
        p = filled[:, list(states)].sum(axis=1)
        rows = _rows(known & (p >= r.episode_probability))

        def make(i: int, code: str = code, p: np.ndarray = p, words: str = words) -> DealWarning:
            t = x.thresholds.episodes.get(code)
            record = f"; {t.record(_RECORD_WHAT[code])}" if t is not None else ""
            return DealWarning(
                code=code, title=titles[code](i),
                evidence=f"The deal's touch pattern looks {words} ({percent_text(p[i])} likely): {pace(i)}",
                threshold=(f"at least {r.episode_probability:.0%} likely {words}, by a model of this company's "
                           f"active, slow, stalled and quiet periods learned from its own deals' touchpoints"
                           f"{record}"),
                severity="high" if p[i] >= r.episode_high else "medium",
                precision=t.precision if t is not None else None, support=t.support if t is not None else None,
            )
        hits.add(rows, code, (lambda rows=rows, p=p: _sev(p[rows] >= r.episode_high)), make)


def _stakeholders_and_pricing(x: _Context, hits: WarningHits) -> None:
    """No decision maker or a single contact from discovery on; no pricing from proposal on."""
    cols, names = x.cols, x.taxonomy.names
    if x.discovery is not None:
        dm = nan_to_zero(cols.num("decision_maker_engaged"))
        rows = _rows((x.order >= x.discovery) & (dm < 1))
        late = (lambda: x.order[rows] >= x.proposal) if x.proposal is not None else (
            lambda: np.zeros(len(rows), dtype=bool))
        hits.add(rows, "no_decision_maker", lambda: _sev(late()), lambda i: DealWarning(
            code="no_decision_maker", title="No decision maker engaged",
            evidence=f"in {x.stage[i]} and no touchpoint with a decision maker yet",
            threshold=f"a decision maker should be engaged from {names[x.discovery]} on",
            severity="high" if x.proposal is not None and x.order[i] >= x.proposal else "medium",
        ))
        contacts = nan_to_zero(cols.num("n_contacts"))
        fired, s_applies, replies = x.learned("single_threaded")
        # the learned threshold sets how many replies make one contact telling, never the stages the rule covers;
        # those are the deal's *real* stages when the stage model's estimate is given: a rep who types discovery
        # before the discovery meeting does not make the deal single-threaded, one who records it weeks late
        # does not hide it
        real = x.real_order if x.real_order is not None else x.order
        rows = _rows((real >= x.discovery) & np.where(s_applies, fired, contacts < x.r.min_contacts))
        s_lim = x.limit("single_threaded")

        def make_single(i: int) -> DealWarning:
            who = "no named contact" if contacts[i] < 1 else "only one contact"
            where = (x.stage[i] if x.real_order is None or real[i] == x.order[i]
                     else f"{names[real[i]]} (its real stage; declared {x.stage[i]})")
            record, precision, support = x.record("single_threaded", i, "single-threaded warnings")
            if s_applies[i]:
                n = int(replies[i])
                evidence = f"{who} involved in {where} after {n} customer repl{'y' if n == 1 else 'ies'}"
                threshold = (f"at most one contact after {int(np.ceil(s_lim[i]))} or more customer replies "
                             f"({_learned_text(x, 'single_threaded', i)}){record}")
            else:
                evidence = f"{who} involved in {where}"
                threshold = (f"at least {x.r.min_contacts} contacts from {names[x.discovery]} on"
                             f"{' (the real stage)' if x.real_order is not None else ''}")
            return DealWarning(code="single_threaded", title="Single-threaded", evidence=evidence,
                               threshold=threshold, severity="medium", precision=precision, support=support)
        hits.add(rows, "single_threaded", "medium", make_single)
    if x.proposal is not None:
        pricing = nan_to_zero(cols.num("pricing_discussed"))
        rows = _rows((x.order >= x.proposal) & (pricing < 1))
        hits.add(rows, "pricing_not_discussed", "medium", lambda i: DealWarning(
            code="pricing_not_discussed", title="Pricing never discussed",
            evidence=f"in {x.stage[i]} but no proposal, contract or pricing touchpoint is logged",
            threshold=f"pricing should be on the table from {names[x.proposal]} on", severity="medium",
        ))


def _close_date(x: _Context, hits: WarningHits) -> None:
    """The expected close date known at scoring time has passed, or keeps being pushed."""
    r = x.r
    to_close = x.cols.num("days_to_expected_close")
    rows = _rows(to_close < 0)
    overdue = r.close_date_overdue_high
    hits.add(rows, "close_date_passed", lambda: _sev(-to_close[rows] > overdue), lambda i: DealWarning(
        code="close_date_passed", title="Close date passed",
        evidence=f"the expected close date passed {_days(-to_close[i])} ago and the deal is still open",
        threshold="any open deal past its expected close date",
        severity="high" if -to_close[i] > r.close_date_overdue_high else "medium",
    ))
    pushes = nan_to_zero(x.cols.num("close_date_pushes"))
    rows = _rows(pushes >= r.close_date_pushes)
    hits.add(rows, "close_date_pushed", lambda: _sev(pushes[rows] >= 2 * r.close_date_pushes), lambda i: DealWarning(
        code="close_date_pushed", title="Close date pushed",
        evidence=f"the expected close date was pushed {_times(int(pushes[i]))}",
        threshold=f"{r.close_date_pushes} or more pushes (default)",
        severity="high" if pushes[i] >= 2 * r.close_date_pushes else "medium",
    ))
