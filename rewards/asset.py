"""The asset contributors are paid in, as the platform shows it: its symbol and decimals.

Ledger amounts are integers in the asset's base units (10**-decimals of one unit); pages, admin
and the API show them in whole units with the symbol. The asset is the platform's own token when
minting (CMT, 18 decimals) or an existing ERC-20 (a stablecoin, say) paid by the distributor; the
health probe checks that the chain agrees with these settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from django.conf import settings


@dataclass(frozen=True)
class PayoutAsset:
    mode: str  # "mint" or "erc20"
    symbol: str
    decimals: int

    def format(self, base_units: int | None, *, symbol: bool = True) -> str:
        """Base units in whole units, exactly: 1500000 at 6 decimals -> "1.5 tUSD"."""
        if base_units is None:
            return ""
        units = int(base_units)
        sign = "-" if units < 0 else ""
        whole, fraction = divmod(abs(units), 10**self.decimals)
        digits = str(fraction).rjust(self.decimals, "0").rstrip("0") if self.decimals else ""
        text = f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"
        return f"{text} {self.symbol}" if symbol else text

    def format_rounded(self, base_units: int | None, places: int = 2) -> str:
        """For reading at a glance (dashboards, lists): "12.35 CMT"; ``format`` is the exact one."""
        if base_units is None:
            return "—"
        whole = (Decimal(int(base_units)) / (Decimal(10) ** self.decimals)).quantize(
            Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN
        )
        return f"{whole:,.{places}f} {self.symbol}"

    def as_json(self) -> dict[str, object]:
        return {"mode": self.mode, "symbol": self.symbol, "decimals": self.decimals}


def payout_asset() -> PayoutAsset:
    return PayoutAsset(
        mode=settings.PAYOUT_ASSET,
        symbol=settings.PAYOUT_ASSET_SYMBOL,
        decimals=settings.PAYOUT_ASSET_DECIMALS,
    )
