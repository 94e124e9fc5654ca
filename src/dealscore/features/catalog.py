"""The feature catalog, generated from the code: `dealscore features --list` and docs/features.md.

The catalog is the spec's column list for the shipped taxonomy, so the
documentation cannot drift from what :func:`build_features` produces; a test
checks the Markdown copy in ``docs/features.md`` is current.
"""

from __future__ import annotations

from pathlib import Path

from dealscore.features.spec import FeatureInfo, FeatureSpec

START = "<!-- feature-catalog:start (generated: dealscore features --list --update-doc docs/features.md) -->"
END = "<!-- feature-catalog:end -->"

FEATURE_CATALOG: list[FeatureInfo] = FeatureSpec.default().columns
"""Every feature of the default spec (shipped taxonomy), in frame order."""

GROUPS = {
    "stage": "Declared stage and how the deal moved through the pipeline",
    "timing": "Age and close-date behaviour",
    "activity": "Touchpoint volume and recency",
    "engagement": "Two-way engagement: replies, contacts, decision makers",
    "evidence": "Key touchpoints that show where the deal really is",
    "customer": "The account: profile and earlier deals",
    "deal": "The deal itself",
    "owner": "The owner's track record",
}


def feature_catalog_markdown(spec: FeatureSpec | None = None) -> str:
    """The catalog as Markdown tables, one per group."""
    columns = spec.columns if spec is not None else FEATURE_CATALOG
    lines: list[str] = []
    seen = list(dict.fromkeys(c.group for c in columns))
    groups = [g for g in GROUPS if g in seen] + [g for g in seen if g not in GROUPS]
    for group in groups:
        rows = [c for c in columns if c.group == group]
        lines += [f"### {group}: {GROUPS.get(group, group)}", "", "| feature | meaning | unit | kind |",
                  "|---|---|---|---|"]
        lines += [f"| `{c.name}` | {c.meaning.replace('|', '/')} | {c.unit} | {c.kind} |" for c in rows]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def update_doc(path: str | Path, spec: FeatureSpec | None = None) -> bool:
    """Rewrite the catalog section of a Markdown file in place; True when it changed."""
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    new = render_doc(text, spec)
    if new != text:
        p.write_text(new, encoding="utf-8")
    return new != text


def render_doc(text: str, spec: FeatureSpec | None = None) -> str:
    """``text`` with the generated catalog placed between the catalog markers."""
    if START not in text or END not in text:
        raise ValueError("the document has no feature-catalog markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n\n{feature_catalog_markdown(spec)}\n{END}{tail}"
