"""Tests (a package, so that test module names may repeat across areas)."""
