"""Template filters for contributor pages."""

from __future__ import annotations

from django import template

register = template.Library()

TOKEN_DECIMALS = 18


@register.filter
def tokens(base_units: int | None) -> str:
    """Base units as whole tokens, exactly: 1500000000000000000 -> "1.5"."""
    if base_units is None:
        return ""
    # Integer arithmetic: Decimal's default context would round past 28 digits.
    units = int(base_units)
    sign = "-" if units < 0 else ""
    whole, fraction = divmod(abs(units), 10**TOKEN_DECIMALS)
    decimals = str(fraction).rjust(TOKEN_DECIMALS, "0").rstrip("0")
    return f"{sign}{whole}.{decimals}" if decimals else f"{sign}{whole}"


@register.filter
def short_hash(value: str, length: int = 10) -> str:
    """``0x1234…cdef`` for long hashes; the full value belongs in a title attribute."""
    if not value or len(value) <= 2 * length:
        return value or ""
    return f"{value[:length]}…{value[-4:]}"
