"""``TokenAmountField``: integer token base units, exact on every database.

Amounts reach 10**18 per token and sums go past 2**63. PostgreSQL stores them as
``numeric(78, 0)`` (any uint256). SQLite's numeric types keep 15 significant digits (Django reads
decimals back through a float), so there the column is text, written and read as exact integers.
Sum amounts in Python, not with SQL ``SUM``, which SQLite would do in 64-bit integers or floats.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

MAX_DIGITS = 78
# The most a moderator may set an amount to (a rate, a bonus, a budget, a price, a threshold):
# 10**18 whole tokens of an 18-decimal asset. Sums of credits this size stay far inside the
# int256/uint256 the payout contract and its receipts encode (2**255 is about 5.8 * 10**76); an
# amount past them would stop every payout at signing, or revert the batch, for everyone.
MAX_AMOUNT = 10**36


class TokenAmountField(models.Field[int, int]):
    description = "An integer amount of token base units"

    def get_internal_type(self) -> str:
        # Not "DecimalField": the SQLite backend would add its float-based converter.
        return "TokenAmountField"

    def db_type(self, connection: BaseDatabaseWrapper) -> str:
        if connection.vendor == "sqlite":
            return "text"
        return f"numeric({MAX_DIGITS}, 0)"

    def rel_db_type(self, connection: BaseDatabaseWrapper) -> str:
        return self.db_type(connection)

    def to_python(self, value: Any) -> int | None:
        if value is None or isinstance(value, int):
            return value
        try:
            number = Decimal(str(value))
        except ArithmeticError as exc:
            raise forms.ValidationError(f"{value!r} is not a whole number of base units") from exc
        if number != number.to_integral_value():
            raise forms.ValidationError("token amounts are whole numbers of base units")
        return int(number)

    def from_db_value(
        self, value: Any, expression: Any, connection: BaseDatabaseWrapper
    ) -> int | None:
        return None if value is None else int(Decimal(str(value)))

    def get_prep_value(self, value: Any) -> str | None:
        value = self.to_python(super().get_prep_value(value))
        if value is None:
            return None
        if len(str(abs(value))) > MAX_DIGITS:
            raise ValueError(f"token amount {value} has more than {MAX_DIGITS} digits")
        return str(value)

    def formfield(self, **kwargs: Any) -> forms.Field | None:
        """Forms take whole or decimal units of the payout asset, never raw base units."""
        from rewards.forms import TokenUnitsField

        return super().formfield(**{"form_class": TokenUnitsField, **kwargs})
