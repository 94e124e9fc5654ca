"""The feature catalog is generated from the code, and the docs copy is current."""

from __future__ import annotations

from pathlib import Path

from dealscore.features import FEATURE_CATALOG, FeatureSpec, feature_catalog_markdown
from dealscore.features.catalog import END, START, render_doc

DOC = Path(__file__).resolve().parents[2] / "docs" / "features.md"


def test_docs_features_md_holds_the_current_catalog() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert START in text and END in text
    stale = "docs/features.md is stale: run dealscore features --list --update-doc docs/features.md"
    assert render_doc(text) == text, stale


def test_catalog_lists_every_feature_with_its_meaning() -> None:
    md = feature_catalog_markdown()
    assert [c.name for c in FEATURE_CATALOG] == FeatureSpec.default().feature_names
    for c in FEATURE_CATALOG:
        assert f"| `{c.name}` | {c.meaning.replace('|', '/')} | {c.unit} | {c.kind} |" in md
