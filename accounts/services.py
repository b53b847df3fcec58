"""State changes for accounts: sign-in with a wallet, bearer tokens, API keys, bans."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from eth_utils.address import to_checksum_address

from accounts import siwe
from accounts.audit import audit_record
from accounts.authentication import auth_cache_clear
from accounts.middleware import sign_in_token_forget
from accounts.models import AccessToken, SiweNonce, User
from accounts.permissions import user_may_manage_account
from accounts.tokens import token_generate, token_hash


class SignInError(Exception):
    """A sign-in attempt was refused. ``reason`` is safe to show to the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SignInResult:
    user: User
    token: str
    expires_at: datetime | None  # None only where ACCESS_TOKEN_TTL is None
    token_id: int  # the AccessToken's id: a cookie session remembers it, sign-out revokes it
    first_sign_in: bool = False  # the wallet's first sign-in: its account was made now


def siwe_nonce_issue(*, domain: str, chain_id: int) -> SiweNonce:
    """A fresh single-use nonce for a SIWE message, valid for ``SIWE_NONCE_TTL``.

    Nonces are issued to anyone, so expired ones are swept here (by the expiry index) to keep the
    table small.
    """
    # Whole seconds: ``created_at`` is offered as the message's Issued At, written without a fraction.
    now = timezone.now().replace(microsecond=0)
    SiweNonce.objects.filter(expires_at__lt=now - settings.SIWE_NONCE_TTL).delete()
    return SiweNonce.objects.create(
        nonce=siwe.generate_nonce(),
        domain=domain,
        chain_id=chain_id,
        created_at=now,
        expires_at=now + settings.SIWE_NONCE_TTL,
    )


def _nonce_refusal(nonce: str, domain: str, now: datetime) -> str:
    row = SiweNonce.objects.filter(nonce=nonce).first()
    if row is None:
        return "unknown nonce: request one from /api/v1/auth/nonce"
    if row.domain != domain:
        return "nonce was issued for another domain"
    if row.used_at is not None:
        return "nonce already used: replayed sign-in message"
    return "nonce expired: request a new one"


def siwe_sign_in(*, message: str, signature: str, domain: str, chain_id: int) -> SignInResult:
    """Verify a signed EIP-4361 message and sign its wallet in, creating the account on first use.

    The nonce is consumed with a conditional UPDATE, so a message can be used once even when two
    requests race. Raises ``SignInError`` with the reason on any failure.
    """
    now = timezone.now()
    try:
        parsed = siwe.parse_message(message)
        siwe.verify_message(
            message, signature, domain=domain, chain_id=chain_id, nonce=parsed.nonce, now=now
        )
    except siwe.SiweError as exc:
        raise SignInError(exc.reason) from exc

    with transaction.atomic():
        consumed = SiweNonce.objects.filter(
            nonce=parsed.nonce, domain=domain, used_at__isnull=True, expires_at__gt=now
        ).update(used_at=now)
        if consumed != 1:
            raise SignInError(_nonce_refusal(parsed.nonce, domain, now))
        user = user_get_or_create_for_wallet(address=parsed.address)
        if user.is_banned:
            raise SignInError(f"account banned: {user.ban_reason or 'contact the moderators'}")
        if not user.is_active:
            raise SignInError("account disabled")
        first = user.last_login is None
        user.last_login = now
        user.save(update_fields=["last_login"])
        secret, token = _access_token_create(
            user=user, kind=AccessToken.Kind.SESSION, name="", ttl=settings.ACCESS_TOKEN_TTL
        )
    return SignInResult(
        user=user,
        token=secret,
        expires_at=token.expires_at,
        token_id=token.pk,
        first_sign_in=first,
    )


def user_get_or_create_for_wallet(*, address: str) -> User:
    """The one account of a wallet; created as a contributor on first sign-in."""
    checksummed = to_checksum_address(address)
    user = User.objects.filter(wallet_address=checksummed).first()
    if user is not None:
        return user
    try:
        # A savepoint: a racing request may create the same wallet's account first.
        with transaction.atomic():
            user = User(
                username=checksummed, wallet_address=checksummed, role=User.Role.CONTRIBUTOR
            )
            user.set_unusable_password()
            user.save()
            return user
    except IntegrityError:
        return User.objects.get(wallet_address=checksummed)


def access_token_issue(
    *, user: User, kind: str, name: str = "", ttl: timedelta | None = None
) -> tuple[str, datetime | None]:
    """Create a bearer credential; returns the secret (shown once) and its expiry."""
    secret, token = _access_token_create(user=user, kind=kind, name=name, ttl=ttl)
    return secret, token.expires_at


def _access_token_create(
    *, user: User, kind: str, name: str, ttl: timedelta | None
) -> tuple[str, AccessToken]:
    secret = token_generate()
    now = timezone.now()
    expires_at = now + ttl if ttl is not None else None
    token = AccessToken.objects.create(
        user=user,
        kind=kind,
        name=name,
        prefix=secret[:10],
        key_hash=token_hash(secret),
        created_at=now,
        expires_at=expires_at,
    )
    return secret, token


def api_key_issue(*, user: User, name: str, actor: User | None = None) -> str:
    """A buyer's API key; it never expires until revoked. Returns the secret, shown once.

    With an ``actor`` (a moderator), the issuance is recorded in the audit trail; raises
    ``PermissionDenied`` if the actor may not manage the user's account (a staff account's key
    lets whoever holds it act as them: only a superuser issues one).
    """
    _refuse_unless_manageable(actor, user)
    with transaction.atomic():
        secret, token = _access_token_create(
            user=user, kind=AccessToken.Kind.API_KEY, name=name, ttl=None
        )
        if actor is not None:
            audit_record(actor=actor, action="api_key.issue", target=token)
    return secret


def access_token_revoke(*, token: AccessToken, actor: User | None = None, reason: str = "") -> bool:
    """Revoke a sign-in token or an API key; returns whether this call revoked it (False: it
    already was, and nothing is written).

    With an ``actor`` (a moderator), the revocation is recorded in the audit trail with
    ``reason``; raises ``PermissionDenied`` if the actor may not manage the token's account
    (revoking a superuser's or a colleague's keys would lock the back office's owners out).
    """
    if actor is not None:
        _refuse_unless_manageable(actor, token.user)
    with transaction.atomic():
        _forget_cached_tokens()
        # A conditional UPDATE: a second revoke (or two racing) changes nothing and isn't audited.
        revoked = AccessToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        transaction.on_commit(lambda: sign_in_token_forget(token.pk))  # its browser session ends
        if revoked and actor is not None:
            audit_record(
                actor=actor,
                action="token.revoke",
                target=token,
                details={"reason": reason, "kind": token.kind, "user": str(token.user)},
            )
    return bool(revoked)


def session_token_revoke(*, token_id: int) -> None:
    """Revoke the sign-in token ``token_id`` (the one a cookie session's sign-in returned, at
    sign-out). Only a sign-in token: an API key is never revoked here."""
    with transaction.atomic():
        _forget_cached_tokens()
        AccessToken.objects.filter(
            pk=token_id, kind=AccessToken.Kind.SESSION, revoked_at__isnull=True
        ).update(revoked_at=timezone.now())
        transaction.on_commit(lambda: sign_in_token_forget(token_id))


def _refuse_unless_manageable(actor: User | None, user: User) -> None:
    if actor is not None and not user_may_manage_account(actor, user):
        raise PermissionDenied(
            f"only a superuser manages {user}'s account: it has rights (staff or moderator)"
        )


def user_ban(*, user: User, reason: str, actor: User | None = None) -> bool:
    """Ban a user: their tokens stop working, their sessions end and they can no longer sign in.
    Returns whether this call banned them: an account already banned is left as it is (its ban's
    reason and time stay those of the ban that was given), and nothing is audited or rechecked.

    With an ``actor`` (a moderator), the ban is recorded in the audit trail in the same
    transaction: a ban without its audit entry, or the reverse, can't happen. Raises
    ``PermissionDenied`` if the actor may not manage the user's account.
    """
    _refuse_unless_manageable(actor, user)
    now = timezone.now()
    with transaction.atomic():
        _forget_cached_tokens()
        # A new session epoch changes the account's session hash: Django ends each of its
        # sessions (admin ones included) at its next request, and an unban doesn't revive them.
        # Conditional, so two bans racing make one.
        banned = User.objects.filter(pk=user.pk, banned_at__isnull=True).update(
            banned_at=now, ban_reason=reason[:500], session_epoch=F("session_epoch") + 1
        )
        if not banned:
            return False
        AccessToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=now)
        if actor is not None:
            audit_record(actor=actor, action="user.ban", target=user, details={"reason": reason})
        _recheck_enqueue(user.pk, "contributor banned")
    return True


def user_unban(*, user: User, actor: User | None = None) -> bool:
    """Lift a ban; returns whether this call lifted one (an account that isn't banned is left
    alone: no audit entry, no recheck of its items). Raises ``PermissionDenied`` if the actor may
    not manage the user's account."""
    _refuse_unless_manageable(actor, user)
    with transaction.atomic():
        _forget_cached_tokens()
        lifted = User.objects.filter(pk=user.pk, banned_at__isnull=False).update(
            banned_at=None, ban_reason=""
        )
        if not lifted:
            return False
        if actor is not None:
            audit_record(actor=actor, action="user.unban", target=user)
        _recheck_enqueue(user.pk, "contributor unbanned")
    return True


def _recheck_enqueue(user_id: int, reason: str) -> None:
    """After commit, the moderation app decides again the unpaid items the user answered (a
    banned contributor's answers leave consensus; an unbanned one's count again): a Celery task
    by name, as accounts sits below the apps that decide items. With the broker down it runs
    here: nothing else would recheck them."""
    from config.broker import task_send

    transaction.on_commit(
        lambda: task_send("moderation.tasks.recheck_user", args=(user_id, reason), run_here=True)
    )


# Fields a moderator may change on a user in admin. The wallet address is not among them: it
# receives payouts, so a new wallet is proven by signing in with it, never typed in by a moderator.
USER_ADMIN_FIELDS = frozenset(
    {
        "username",
        "first_name",
        "last_name",
        "email",
        "role",
        "is_active",
        "is_staff",
        "is_superuser",
        "groups",
        "user_permissions",
    }
)


def user_save_by_moderator(
    *, user: User, changed: dict[str, object], actor: User, created: bool = False
) -> User:
    """Save a moderator's edit of ``user`` (already applied to the instance) with its audit entry,
    in one transaction. ``changed`` maps each changed field to its new value (for the trail).

    Raises ``ValueError`` for a field moderators may not change (the wallet address, bans: those
    have their own services), ``PermissionDenied`` if the actor may not manage the account as it
    was or as the edit makes it (a moderator giving the moderator role).
    """
    refused = sorted(set(changed) - USER_ADMIN_FIELDS)
    if refused:
        raise ValueError(f"moderators can't change {', '.join(refused)} here")
    with transaction.atomic():
        if not created:
            # Locked, so a ban (or another edit) landing meanwhile is seen here or waits.
            _refuse_unless_manageable(actor, User.objects.select_for_update().get(pk=user.pk))
        _refuse_unless_manageable(actor, user)
        _forget_cached_tokens()
        if created:
            user.save()
        else:
            # Only what the moderator changed: the form's copy of the rest (a ban, the sign-in
            # epoch, the password) may be older than the row, and must not overwrite it.
            concrete = {field.name for field in User._meta.concrete_fields}
            fields = [name for name in changed if name in concrete]
            if fields:
                user.save(update_fields=fields)
        audit_record(
            actor=actor,
            action="user.create" if created else "user.change",
            target=user,
            details=changed,
        )
    return user


def _forget_cached_tokens() -> None:
    """This process's bearer-token cache forgets every token now and again when the transaction
    commits (a request between the two must not cache the old state); other processes follow
    within ``AUTH_CACHE_SECONDS``."""
    auth_cache_clear()
    transaction.on_commit(auth_cache_clear)
