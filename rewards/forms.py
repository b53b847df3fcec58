"""Token amounts as people type them: whole or decimal units of the payout asset ("12.5"),
converted exactly to and from integer base units (never through a float)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms

from rewards.asset import payout_asset
from rewards.fields import MAX_AMOUNT


def units_to_base(text: str, *, required: bool = True) -> int | None:
    """A moderator's "12.5" in the payout asset's units, as base units (exact)."""
    text = text.strip()
    if not text:
        if required:
            raise forms.ValidationError("Give an amount, e.g. 0 or 12.5.")
        return None
    decimals = payout_asset().decimals
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise forms.ValidationError("Give a number, e.g. 2500 or 12.5.") from exc
    if not value.is_finite():
        raise forms.ValidationError("Give a number, e.g. 2500 or 12.5.")
    units = value.scaleb(decimals)
    if value < 0 or units != units.to_integral_value():
        raise forms.ValidationError(f"A non-negative amount with at most {decimals} decimals.")
    if units > MAX_AMOUNT:
        limit = Decimal(MAX_AMOUNT).scaleb(-decimals)
        raise forms.ValidationError(f"At most {limit:,f} (a larger amount can't be paid out).")
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
