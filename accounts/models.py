"""People and their credentials: wallet accounts, sign-in nonces, bearer tokens and API keys."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models import Q
from django.utils.crypto import salted_hmac


class CrowdmintUserManager(UserManager["User"]):
    def create_superuser(
        self, username: str, email: str | None = None, password: str | None = None, **extra: Any
    ) -> User:
        """``manage.py createsuperuser`` makes a moderator."""
        extra.setdefault("role", User.Role.MODERATOR)
        return super().create_superuser(username, email, password, **extra)


class User(AbstractUser):
    """Anyone who uses Crowdmint. Contributors are identified by their wallet address."""

    class Role(models.TextChoices):
        CONTRIBUTOR = "contributor", "Contributor"
        BUYER = "buyer", "Dataset buyer"
        MODERATOR = "moderator", "Moderator"

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.CONTRIBUTOR)
    # EIP-55 checksummed; one account per wallet.
    wallet_address = models.CharField(max_length=42, null=True, blank=True, unique=True)
    banned_at = models.DateTimeField(null=True, blank=True)
    ban_reason = models.CharField(max_length=500, blank=True)
    # Raised by a ban (never lowered): part of the session hash, so every session of the account
    # ends at its next request, and an unban doesn't bring them back.
    session_epoch = models.PositiveIntegerField(default=0, editable=False)

    objects: ClassVar[CrowdmintUserManager] = CrowdmintUserManager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(wallet_address__isnull=True)
                | Q(wallet_address__regex=r"^0x[0-9a-fA-F]{40}$"),
                name="user_wallet_address_format",
            ),
        ]

    def __str__(self) -> str:
        return self.wallet_address or self.username

    @property
    def is_banned(self) -> bool:
        return self.banned_at is not None

    def get_session_auth_hash(self) -> str:
        return self._session_hash(None)

    def get_session_auth_fallback_hash(self) -> Iterator[str]:
        for secret in settings.SECRET_KEY_FALLBACKS:
            yield self._session_hash(secret)

    def _session_hash(self, secret: str | bytes | None) -> str:
        """Django's HMAC of the password field, and of the session epoch once a ban raised it (an
        account never banned keeps Django's hash: its sessions outlive this field's arrival)."""
        if self.session_epoch == 0:
            value = self.password
        else:
            value = f"{self.password}\x00epoch {self.session_epoch}"
        return salted_hmac(
            "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash",
            value,
            secret=secret,
            algorithm="sha256",
        ).hexdigest()


class SiweNonce(models.Model):
    """A single-use challenge for a Sign-In with Ethereum message."""

    nonce = models.CharField(max_length=64, unique=True)
    domain = models.CharField(max_length=255)
    chain_id = models.PositiveBigIntegerField()
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["expires_at"])]

    def __str__(self) -> str:
        return self.nonce


class AccessToken(models.Model):
    """A bearer credential: a session token from SIWE sign-in, or a buyer's API key.

    Only the SHA-256 of the secret is stored; the secret is shown once, when it is made.
    """

    class Kind(models.TextChoices):
        SESSION = "session", "Sign-in session"
        API_KEY = "api_key", "API key"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="access_tokens")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, help_text="The first characters, to recognise a key.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.prefix}… ({self.user})"


class AuditEvent(models.Model):
    """Who did what to which record: moderators' overrides, bans, payout approvals, key issuance."""

    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.target_type}:{self.target_id}"
