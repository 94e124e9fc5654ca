"""What a key is told about the model in use: ``GET /v1/model``, its reload answer and the model page.

The model's figures are the company's, but its recording habits name reps: how late each one types
stages in, how often ahead of the evidence. That is coaching data about people, so a key sees the reps
whose deals it may see (:meth:`~dealscore_service.auth.Principal.can_see`, a rep's team read from the
store's open deals) and a key without the read scope (a CRM's scoring key) sees none. The company-wide
line stays: it names no one.
"""

from __future__ import annotations

from dealscore_service.auth import Principal, Scope
from dealscore_service.deps import Services
from dealscore_service.schemas import ModelInfo


def visible_reps(services: Services, principal: Principal) -> frozenset[str] | None:
    """The rep ids whose habits the key may read; ``None``: every rep (a key that reads everything)."""
    if not principal.has(Scope.read):
        return frozenset()
    if not principal.limited:
        return None
    teams = services.store.owner_teams_now() if principal.teams else {}
    known = (services.models.current.recording_habits.get("reps") or []) if services.models.current else []
    return frozenset(r["rep_id"] for r in known if principal.can_see(r["rep_id"], teams.get(r["rep_id"])))


def model_info(services: Services, principal: Principal) -> ModelInfo:
    """The model in use as this key may read it."""
    return services.models.info(reps=visible_reps(services, principal))
