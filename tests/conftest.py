"""Suite-wide fixtures: small, deterministic histories shared by several areas."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")
