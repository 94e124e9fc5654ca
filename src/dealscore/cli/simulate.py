"""CLI commands for this area (registered on the shared Typer app)."""

from __future__ import annotations

from dealscore.cli import app  # noqa: F401
