"""Small inline SVG icons for the deal timeline: one per touchpoint type, one for a CRM stage change.

Inline SVG because the page's Content-Security-Policy loads nothing from
elsewhere and there is no build step. Icons are decorative (``aria-hidden``):
the timeline entry next to each one says the type in words, so nothing is
conveyed by the picture alone. Drawn with ``currentColor`` strokes so CSS
decides the colour (inbound touchpoints are filled, outbound outlined).
"""

from __future__ import annotations

from markupsafe import Markup

# 24×24 line drawings, stroke only
_PATHS: dict[str, str] = {
    "email": '<rect x="3" y="5.5" width="18" height="13" rx="2"/><path d="M3.5 7l8.5 6.5L20.5 7"/>',
    "call": '<path d="M6.5 3.5h3l1.5 4.5-2 1.5a11 11 0 0 0 5.5 5.5l1.5-2 4.5 1.5v3a2 2 0 0 1-2 2'
            'A15.5 15.5 0 0 1 4.5 5.5a2 2 0 0 1 2-2z"/>',
    "meeting": '<circle cx="8.5" cy="8" r="3"/><circle cx="16.5" cy="9" r="2.5"/>'
               '<path d="M3 19.5a5.5 5.5 0 0 1 11 0"/><path d="M14.5 15a4.5 4.5 0 0 1 7 4"/>',
    "demo": '<rect x="3" y="4" width="18" height="12" rx="1.5"/><path d="M8.5 20h7M12 16v4"/>'
            '<path d="M10.5 7.5l4 2.5-4 2.5z"/>',
    "proposal": '<path d="M6 3h8l4 4v14H6z"/><path d="M14 3v4h4M9 12h6M9 16h6"/>',
    "contract": '<path d="M6 3h8l4 4v14H6z"/><path d="M14 3v4h4"/><path d="M9 14.5l2 2 4-4.5"/>',
    "note": '<path d="M4.5 19.5l1-4.5L16 4.5l3.5 3.5L9 18.5z"/><path d="M13.5 7l3.5 3.5M4.5 19.5h15"/>',
    "stage": '<path d="M5.5 21V3.5"/><path d="M5.5 4h12l-2.5 4 2.5 4h-12"/>',
}
_OTHER = '<circle cx="12" cy="12" r="4.5"/>'

#: How each canonical activity type reads on the page (other configured types are capitalised).
TYPE_LABELS = {"email": "Email", "call": "Call", "meeting": "Meeting", "demo": "Demo", "proposal": "Proposal",
               "contract": "Contract", "note": "Note"}


def type_label(kind: str | None) -> str:
    if not kind:
        return "Touchpoint"
    return TYPE_LABELS.get(kind, kind.replace("_", " ").capitalize())


def icon(kind: str | None) -> Markup:
    """The icon for a touchpoint type (or ``"stage"``); a plain dot for types without a drawing."""
    body = _PATHS.get(kind or "", _OTHER)
    return Markup(
        '<svg class="icon" viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" focusable="false" '
        'fill="none" stroke="currentColor" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round">'
        f"{body}</svg>"
    )


__all__ = ["TYPE_LABELS", "icon", "type_label"]
