"""Sign-in fingerprints: the client's network and browser, hashed, for the Sybil check."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from datetime import timedelta

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.throttling import BaseThrottle

from accounts.models import User
from moderation.models import SignInFingerprint


def _digest(kind: str, value: str) -> str:
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:32]


def client_network(request: HttpRequest) -> str:
    """The client's network: its address (as rate limits see it, NUM_PROXIES honoured) cut to
    a /24 (IPv4) or /48 (IPv6), so one household or one VPN exit shares a fingerprint."""
    address = BaseThrottle().get_ident(request)  # type: ignore[arg-type]
    try:
        ip = ipaddress.ip_address(address.split(",")[0].strip())
    except ValueError:
        return "unknown"
    if (ip.is_loopback or ip.is_unspecified) and not settings.DEMO_MODE:
        # The app sits behind a proxy it wasn't told about (NUM_PROXIES): every client looks
        # alike, and clustering them would flag the whole crowd. (On the demo, everyone is on
        # this machine: new wallets signing in from it are the cluster an attacker would make.)
        return "unknown"
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def fingerprint_record(*, request: HttpRequest, user: User, first: bool) -> SignInFingerprint:
    """Keep a hashed fingerprint of this sign-in; older ones than the retention are dropped."""
    SignInFingerprint.objects.filter(
        created_at__lt=timezone.now() - timedelta(days=settings.FINGERPRINT_RETENTION_DAYS)
    ).delete()
    network = client_network(request)
    return SignInFingerprint.objects.create(
        user=user,
        network="" if network == "unknown" else _digest("network", network),
        agent=_digest("agent", request.META.get("HTTP_USER_AGENT", "")),
        first_sign_in=first,
    )
