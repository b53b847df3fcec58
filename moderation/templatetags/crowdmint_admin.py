"""The back office's template helpers: the admin home's dashboard, token amounts, shares."""

from __future__ import annotations

from typing import Any

from django import template

from moderation.backoffice import dashboard_read
from moderation.charts import bar_chart, line_chart, stacked_bars
from rewards.asset import payout_asset

register = template.Library()

PROGRESS_SERIES = [
    ("open", "#bcd3de"),
    ("in review", "#e0a030"),
    ("accepted", "#417690"),
    ("rejected", "#ba2121"),
]


@register.filter
def tokens(base_units: int | None) -> str:
    """Base units as units of the payout asset, rounded for reading: "12.35 CMT"."""
    return payout_asset().format_rounded(base_units)


@register.filter
def percent(share: float | None) -> str:
    return "—" if share is None else f"{share:.0%}"


@register.inclusion_tag("admin/crowdmint/dashboard.html")
def crowdmint_dashboard() -> dict[str, Any]:
    board = dashboard_read()
    asset = payout_asset()
    scale = 10**asset.decimals
    return {
        "board": board,
        "labels_chart": bar_chart(
            [(f"{day:%b %d}", n) for day, n in board.labels_per_day],
            title="Labels per day, last 30 days",
        ),
        "payouts_chart": line_chart(
            [(f"{day:%b %d}", total / scale) for day, total in board.payouts_per_day],
            title="Payouts per day (confirmed), last 30 days",
            unit=f" {asset.symbol}",
        ),
        "progress_chart": stacked_bars(
            [(p.project.name, [p.open, p.review, p.accepted, p.rejected]) for p in board.projects],
            series=PROGRESS_SERIES,
            title="Progress per project (items)",
        ),
    }
