"""The service's commands of the ``dealscore`` CLI: ``serve``, ``api-key create`` and ``demo``.

They live with the service because they start it or call it; the library's CLI
(:mod:`dealscore.cli`) knows nothing of the service and loads these through the
``dealscore.cli`` entry point the package declares (pyproject.toml), so the
dependency points one way: service → library.
"""

from dealscore_service.cli import demo, serve

__all__ = ["demo", "serve"]
