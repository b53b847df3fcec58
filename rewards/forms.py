"""Token amounts as people type them: whole or decimal units of the payout asset ("12.5"),
converted exactly to and from integer base units (never through a float)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms

from rewards.asset import payout_asset
from rewards.fields import MAX_AMOUNT, MAX_DIGITS


def units_to_base(text: str, *, required: bool = True) -> int | None:
    """A moderator's "12.5" in the payout asset's units, as base units (exact)."""
    text = text.strip()
    if not text:
        if required:
            raise forms.ValidationError("Give an amount, e.g. 0 or 12.5.")
        return None
    decimals = payout_asset().decimals
    if not text.isascii():  # Decimal reads other scripts' digits: "١٢" was saved as 12
        raise forms.ValidationError("Give a number in ASCII digits, e.g. 2500 or 12.5.")
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise forms.ValidationError("Give a number, e.g. 2500 or 12.5.") from exc
    if not value.is_finite():
        raise forms.ValidationError("Give a number, e.g. 2500 or 12.5.")
    not_an_amount = forms.ValidationError(
        f"A non-negative amount with at most {decimals} decimals."
    )
    too_large = forms.ValidationError(
        f"At most {Decimal(MAX_AMOUNT).scaleb(-decimals):,f} (a larger amount can't be paid out)."
    )
    if value < 0:
        raise not_an_amount
    # Bounded by its exponent before any arithmetic: scaling "1e999999999" overflowed the decimal
    # context (an uncaught Overflow, a 500), and "1e-999999999" underflowed to 0 (a positive
    # amount taken for zero).
    if value and value.adjusted() + decimals > MAX_DIGITS:
        raise too_large
    if value and value.adjusted() + decimals < 0:
        raise not_an_amount
    try:
        units = value.scaleb(decimals)
        whole = units == units.to_integral_value()
    except ArithmeticError as exc:  # what the bounds above leave out, still not an amount
        raise too_large from exc
    if not whole:
        raise not_an_amount
    if units > MAX_AMOUNT:
        raise too_large
    return int(units)


class TokenUnitsField(forms.Field):
    """A form field for a ``TokenAmountField``: shown and entered in units of the payout asset
    (its label names the symbol), cleaned to integer base units."""

    widget = forms.TextInput

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.pop("max_value", None)
        kwargs.pop("min_value", None)
        super().__init__(*args, **kwargs)
        asset = payout_asset()
        if self.label and f"({asset.symbol})" not in str(self.label):
            self.label = f"{self.label} ({asset.symbol})"
        self.widget.attrs.setdefault("inputmode", "decimal")

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return payout_asset().format(value, symbol=False)
        return value

    def to_python(self, value: Any) -> int | None:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        return units_to_base("" if value is None else str(value), required=False)

    def validate(self, value: Any) -> None:
        if value is None and self.required:
            raise forms.ValidationError("Give an amount, e.g. 0 or 12.5.", code="required")
