"""The first distributed pass: what every partition contributes to the whole history's cross-deal figures.

Features of a deal read its own rows plus a few figures learned from *all*
deals: owner and account win rates and stage norms (a
:class:`~dealscore.features.context.FeatureContext`), and, for a frame written
before any model exists, the categorical vocabularies observed. Each partition
sends its small part (per deal: keys and dates; per won deal: stage durations;
the category values its snapshot deals hold); the client fits the context and
the vocabulary from all parts with the same code a single history uses, and
broadcasts both to the workers for the feature pass. Queries stay point in time:
the context only ever answers from deals closed before each snapshot's ``as_of``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from dealscore.data.history import DealHistory
from dealscore.features import FeatureContext, FeatureSpec, make_snapshots
from dealscore.features.context import ContextPart
from dealscore.features.inputs import read_deals


def observed_categories(history: DealHistory, spec: FeatureSpec) -> dict[str, list[str]]:
    """The values each open-vocabulary categorical holds among the partition's deals that have snapshots.

    This is what an unfitted spec's feature frame would show as categories on
    this partition; whether a deal has a training snapshot does not depend on the
    snapshot interval or on the data cut (see :func:`~dealscore.features.make_snapshots`).
    """
    open_vocab = [n for n in spec.categorical_names if not spec.categories.get(n)]
    if not open_vocab:
        return {}
    deals = read_deals(history)
    # pandas' hash lookup: np.isin compares object ids pairwise, quadratic in a partition's deals
    with_snapshots = pd.Series(deals.ids).isin(make_snapshots(history)["deal_id"].unique()).to_numpy()
    frame = pd.DataFrame({n: pd.Series(getattr(deals, n)[with_snapshots], dtype=object) for n in open_vocab})
    fitted = spec.fit_vocabulary(frame)
    return {n: fitted.categories[n] for n in open_vocab}


def fit_vocabulary(spec: FeatureSpec, parts: Sequence[Mapping[str, list[str]]]) -> FeatureSpec:
    """``spec`` with its open vocabularies fitted to what all partitions observed (as one frame would)."""
    names = {n for p in parts for n in p}
    union = {n: pd.Series(sorted({v for p in parts for v in p.get(n, [])}), dtype=object) for n in names}
    return spec.fit_vocabulary(pd.DataFrame(union)) if union else spec


def fit_context(parts: Sequence[ContextPart], stages: list[str], context: FeatureContext | None = None
                ) -> FeatureContext:
    """The whole history's context from the partitions' parts (``context``: an unfitted one to fit)."""
    return (context or FeatureContext()).fit_parts(list(parts), stages)
