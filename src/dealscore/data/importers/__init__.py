"""Importers: CRM exports → the deal-history contract (DESIGN §3).

- :func:`import_maven`: the public Maven Analytics CRM export (a fixed layout).
- :func:`import_csv`: any CSV export, driven by a YAML mapping file (table and column
  renames, value maps, date formats); ``config/mappings/salesforce.yaml`` is the example.

Both return an :class:`ImportResult` whose history already passed validation;
write it with :func:`dealscore.data.write_history`.
"""

from dealscore.data.importers.common import ImportReport, ImportResult
from dealscore.data.importers.maven import import_maven

__all__ = ["ImportReport", "ImportResult", "import_maven"]
