"""Importers: CRM exports → the deal-history contract (DESIGN §3).

- :func:`import_maven`: the public Maven Analytics CRM export (a fixed layout).
- :func:`import_csv`: any CSV export, driven by a YAML mapping file (table and column
  renames, value maps, date formats); ``config/mappings/salesforce-api.yaml`` is the example.

Both return an :class:`ImportResult` whose history already passed validation;
write it with :func:`dealscore.data.write_history`. Every choice and count is in
its :class:`ImportReport`; docs/importers.md documents both importers.
"""

from dealscore.data.importers.common import ImportReport, ImportResult
from dealscore.data.importers.csv_mapping import CsvMapping, MappingError, import_csv, load_mapping
from dealscore.data.importers.maven import import_maven

__all__ = ["CsvMapping", "ImportReport", "ImportResult", "MappingError", "import_csv", "import_maven", "load_mapping"]
