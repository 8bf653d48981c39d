"""IFBench `custom:csv_*` checkers: CSV tables with a given header and row count.

Rows are read with Python's `csv` module. The two checkers that ask for double quotes first
triple every `"`, which turns a quoted field into one whose quotes survive parsing, so the
quotes can then be seen in the parsed fields.
"""

from __future__ import annotations

import csv
import io
import re
from typing import ClassVar

from longhorizon.verifiers.ifbench.base import Checker


def _rows(text: str, delimiter: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(text), delimiter=delimiter))


def _header(names: list[str], separator: str) -> re.Pattern[str]:
    """The first line: the column names, each bare or in double quotes."""
    return re.compile("^" + separator.join(f'({n}|"{n}")' for n in names) + "$")


class CsvCity(Checker):
    instruction_id: ClassVar[str] = "custom:csv_city"
    columns: ClassVar[list[str]] = ["ID", "Country", "City", "Year", "Count"]
    template: ClassVar[str] = (
        'Generate CSV data: The column names are ["ID", "Country", "City", "Year", "Count"], '
        "the data should be comma delimited. Please generate 7 rows."
    )

    def check(self, response: str) -> bool:
        rows = _rows(response)
        return len(rows) == 8 and rows[0] == self.columns and all(len(r) == 5 for r in rows)


class CsvSpecialCharacter(Checker):
    instruction_id: ClassVar[str] = "custom:csv_special_character"
    header: ClassVar[re.Pattern[str]] = _header(
        ["ProductID", "Category", "Brand", "Price", "Stock"], ",[ \t]*"
    )
    template: ClassVar[str] = (
        'Generate CSV data: The column names are ["ProductID", "Category", "Brand", "Price", '
        '"Stock"], the data should be comma delimited. Please generate 14 rows. Add one field '
        "which contains a special character and enclose it in double quotes."
    )

    def check(self, response: str) -> bool:
        if not self.header.match(response.split("\n")[0].strip()):
            return False
        rows = _rows(response.replace('"', '"""'))
        if len(rows) != 15:
            return False
        # Rows are read in order and the first quoted field with a special character
        # settles it: rows after it are not checked for their width.
        for row in rows[1:]:
            if len(row) != 5:
                return False
            if any(re.match(r'".*[^\d\w\s].*"', field) for field in row):
                return True
        return False


class CsvQuotes(Checker):
    instruction_id: ClassVar[str] = "custom:csv_quotes"
    header: ClassVar[re.Pattern[str]] = _header(
        ["StudentID", "Subject", "Grade", "Semester", "Score"], "\t *"
    )
    template: ClassVar[str] = (
        'Generate CSV data: The column names are ["StudentID", "Subject", "Grade", '
        '"Semester", "Score"], the data should be tab delimited. Please generate 3 rows and '
        "enclose each single field in double quotes."
    )

    def check(self, response: str) -> bool:
        if not self.header.match(response.split("\n")[0].strip()):
            return False
        rows = _rows(response.replace('"', '"""'), delimiter="\t")
        return len(rows) == 4 and all(len(row) == 5 and _all_quoted(row) for row in rows)


def _all_quoted(row: list[str]) -> bool:
    return all(len(f.strip()) > 0 and f.strip()[0] == f.strip()[-1] == '"' for f in row)
