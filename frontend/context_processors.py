from typing import Any

from django.conf import settings
from django.http import HttpRequest

from rewards.asset import payout_asset


def crowdmint(request: HttpRequest) -> dict[str, Any]:
    return {"DEMO_MODE": settings.DEMO_MODE, "ASSET": payout_asset()}
