"""dealscore: predicts the real stage and win probability of open B2B deals.

The package is layered so that dependencies point one way:
``data`` → ``features`` → ``models`` → ``training`` / ``scoring``; the FastAPI
service in ``service/`` is a thin HTTP layer over :mod:`dealscore.scoring`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dealscore")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["__version__"]
