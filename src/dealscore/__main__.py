"""``python -m dealscore`` runs the CLI (used by the demo to start the service)."""

from dealscore.cli import main

main()
