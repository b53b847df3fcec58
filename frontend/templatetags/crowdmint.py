"""Template filters for contributor pages."""

from __future__ import annotations

import math

from django import template

from rewards.asset import payout_asset
from rewards.models import LedgerEntry
from rewards.selectors import entry_description as describe

register = template.Library()


@register.filter
def tokens(base_units: int | None) -> str:
    """Base units of the payout asset in whole units, exactly: 1500000000000000000 -> "1.5"
    for an 18-decimal token (integer arithmetic: no rounding at any size)."""
    return payout_asset().format(base_units, symbol=False)


@register.filter
def amount(base_units: int | None) -> str:
    """Base units with the payout asset's symbol: "1.5 CMT", "12.25 tUSD"."""
    return payout_asset().format(base_units)


@register.filter
def percent(share: float | None) -> str:
    """A share as a percentage to one decimal, rounded down so only a perfect record reads 100%:
    0.9987 -> "99.8%", 0.5 -> "50%", 1 -> "100%" (None -> "–")."""
    if share is None:
        return "–"
    tenths = math.floor(min(max(float(share), 0.0), 1.0) * 1000 + 1e-9)
    whole, tenth = divmod(tenths, 10)
    return f"{whole}%" if tenth == 0 else f"{whole}.{tenth}%"


@register.filter
def method_name(value: object) -> str:
    """A consensus method's name as people say it ("Bayesian Dawid-Skene" for ``bayes_ds``)."""
    from labeling.models import ConsensusMethod

    names = dict(ConsensusMethod.choices)
    return str(names.get(str(value), value))


@register.filter
def short_hash(value: str, length: int = 10) -> str:
    """``0x1234…cdef`` for long hashes; the full value belongs in a title attribute."""
    if not value or len(value) <= 2 * length:
        return value or ""
    return f"{value[:length]}…{value[-4:]}"


@register.filter
def short_address(value: object) -> str:
    """A wallet address shortened for narrow screens, ``0x12ab…89cd``; anything that is not a
    ``0x`` address (a moderator's user name) is left as it is."""
    text = str(value or "")
    if text.startswith("0x") and len(text) > 12:
        return f"{text[:6]}…{text[-4:]}"
    return text


@register.filter
def entry_description(entry: LedgerEntry) -> str:
    """What a ledger entry was for, in words (not its ledger source)."""
    return describe(entry)
