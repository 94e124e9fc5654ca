"""The line of the export file each row read by ``read_source_csv`` starts on, as a text editor numbers it.

A row's line is not its position + 2 once a quoted cell holds line breaks (multi-line notes
and descriptions in Salesforce and HubSpot exports) or the reader skips blank lines: each
later row would be named by a line that holds something else. pandas' own parse errors
number records, not lines, and are corrected the same way.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest

from dealscore.data.importers import common
from dealscore.data.importers.common import LINE, read_source_csv
from dealscore.errors import DataValidationError


@pytest.mark.parametrize(("text", "lines"), [
    pytest.param("a,b\n1,2\n3,4\n", [2, 3], id="one line per row"),
    pytest.param('a,b\n1,"x\ny\nz"\n3,4\n', [2, 5], id="a cell with line breaks"),
    pytest.param('a,b\r\n1,"x\r\ny"\r\n3,4\r\n', [2, 4], id="CR LF"),
    pytest.param('a,b\r1,"x\ry"\r3,4\r', [2, 4], id="CR"),
    pytest.param('a,b\n1,"x\r\ny"\r3,4', [2, 4], id="mixed line ends, no final one"),
    pytest.param('a,b\n1,"he said ""hi\nthere"""\n3,4\n', [2, 4], id="doubled quotes"),
    pytest.param("a,b\n\n1,2\n\n\n3,4\n", [3, 6], id="blank lines skipped"),
    pytest.param("a,b\n1,2\n \t \r\n3,4\n", [2, 4], id="a line of blanks skipped"),
    pytest.param('a,b\n1,2\n"  "\n3,4\n', [2, 3, 4], id="a quoted blank cell is a row"),
    pytest.param("a,b\n1,2\n  ,\n3,4\n", [2, 3, 4], id="blanks and a delimiter are a row"),
    pytest.param("\n\n \na,b\n1,2\n", [5], id="blank lines before the header"),
    pytest.param('a,"b\n"\n1,2\n', [3], id="a header with a line break"),
    pytest.param('a,b\n1,"x\ny"\n\n\n', [2], id="blank lines at the end"),
    pytest.param("\ufeffa,b\r\n1,\"x\r\ny\"\r\n3,4\r\n", [2, 4], id="byte-order mark"),
])
def test_each_row_names_the_line_its_record_starts_on(tmp_path: Path, text: str, lines: list[int]) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(text.encode("utf-8"))
    frame = read_source_csv(path, label="d.csv")
    assert frame[LINE].tolist() == lines
    assert list(frame.columns) == ["a", "b", LINE]


@pytest.mark.parametrize(("text", "encoding", "delimiter", "lines"), [
    pytest.param('a;b\n1;"x;\ny"\n3;4\n', "utf-8-sig", ";", [2, 4], id="semicolons"),
    pytest.param("a\tb\n1\t2\n \t\n3\t4\n", "utf-8-sig", "\t", [2, 3, 4], id="tabs: a blank and a tab are a row"),
    pytest.param('a,b\n1,"x\ny"\n3,4\n', "utf-16", ",", [2, 4], id="UTF-16"),
    pytest.param('a,b\n1,"é\ny"\n3,4\n', "cp1252", ",", [2, 4], id="cp1252"),
    pytest.param("\ufeff\na,b\n1,2\n", "utf-8", ",", [3], id="a BOM read as UTF-8, then a blank line"),
])
def test_lines_are_counted_with_the_readers_encoding_and_delimiter(
    tmp_path: Path, text: str, encoding: str, delimiter: str, lines: list[int],
) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(text.encode(encoding))
    frame = read_source_csv(path, label="d.csv", encoding=encoding, delimiter=delimiter)
    assert frame[LINE].tolist() == lines


@pytest.mark.parametrize("text", [
    pytest.param("a\n1\n2\n", id="LF"),
    pytest.param("a\r1\r2", id="CR, no final line end"),
    # the file is counted in chunks of 2**20 characters: one cuts this CR LF in two
    pytest.param("a\r\n" + "v" * (2**20 - 4) + "\r\n2\r\n", id="CR LF across chunks"),
])
def test_a_file_of_one_line_per_row_is_read_once(
    tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Counting the line ends is enough there: a large export is not read a second time record by record."""
    def no_second_read(*args: object, **kwargs: object) -> None:
        raise AssertionError("read record by record")

    monkeypatch.setattr(common, "_records", no_second_read)
    path = tmp_path / "d.csv"
    path.write_bytes(text.encode("utf-8"))
    assert read_source_csv(path, label="d.csv")[LINE].tolist() == [2, 3]


@pytest.fixture
def default_cell_limit() -> Iterator[None]:
    """The csv module's cell size limit as a fresh process has it (128 KiB), whatever earlier tests did."""
    old = csv.field_size_limit(128 * 1024)
    yield
    csv.field_size_limit(old)


@pytest.mark.usefixtures("default_cell_limit")
def test_a_cell_longer_than_the_csv_modules_limit_is_counted(tmp_path: Path) -> None:
    """pandas reads a cell of any length: a 200 KB multi-line note must not stop the line count."""
    path = tmp_path / "d.csv"
    note = "call notes\n" * 20_000
    path.write_text(f'a,b\n1,"{note}"\n3,4\n')
    assert read_source_csv(path, label="d.csv")[LINE].tolist() == [2, 20_003]


@pytest.mark.parametrize(("text", "said"), [
    pytest.param('a,b\n1,"x\ny\nz"\n3,4\n5,6,7\n', "Expected 2 fields in line 6, saw 3", id="a row too long"),
    pytest.param('a,b\r\n1,"x\r\ny"\r\n\r\n5,6,7\r\n', "Expected 2 fields in line 5, saw 3", id="CR LF, blank line"),
    pytest.param('a,b\n1,"x\ny"\n3,"4\n5,6\n', "EOF inside string starting at line 4", id="a quote never closed"),
])
def test_a_parse_error_names_the_file_line(tmp_path: Path, text: str, said: str) -> None:
    """pandas says "line 4" for the fourth record and "row 2" for the third: neither is the line."""
    path = tmp_path / "d.csv"
    path.write_bytes(text.encode("utf-8"))
    with pytest.raises(DataValidationError) as e:
        read_source_csv(path, label="d.csv")
    assert f"d.csv: {path} is not a readable CSV file: Error tokenizing data. C error: {said}" in str(e.value)
    assert e.value.table == "d.csv" and e.value.fix


def test_a_file_the_two_readers_split_differently_is_a_clear_error(tmp_path: Path) -> None:
    """Lone CR line ends around a blank line and an empty row: pandas drops the row, the csv module keeps it, so
    no row's line can be trusted (this was a raw ValueError from the column assignment)."""
    path = tmp_path / "d.csv"
    path.write_bytes(b"a,b\r1,2\r\r,\r3,4\r")
    with pytest.raises(DataValidationError) as info:
        read_source_csv(path, label="d.csv")
    assert "cannot be matched to the file's lines" in str(info.value)
    assert info.value.fix is not None and "line ends" in info.value.fix
