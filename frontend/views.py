"""Contributor pages. They render data from selectors; every state change goes through the API
(from the page's JavaScript) or a service, never here."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from eth_account.messages import encode_defunct

from accounts import siwe
from accounts.apis import session_sign_in, session_sign_out, signed_in
from accounts.demo import demo_account, demo_accounts
from accounts.models import User
from accounts.permissions import user_is_contributor
from accounts.services import SignInError, siwe_nonce_issue, siwe_sign_in
from labeling import selectors as labeling_selectors
from rewards.asset import payout_asset
from rewards.chain.merkle import canonical_json, receipt_digest
from rewards.receipts import receipt_for_entry
from rewards.selectors import (
    explorer_tx_url,
    ledger_entries_for_user,
    ledger_entry_get_for_user,
    reward_summary_for_user,
)


def home(request: HttpRequest) -> HttpResponse:
    return render(
        request, "frontend/home.html", {"projects": labeling_selectors.project_list_open()}
    )


def favicon(request: HttpRequest) -> HttpResponse:
    """``/favicon.ico``: browsers ask for it on every page that names no icon of its own (admin,
    the API's JSON opened in a tab, the API docs), and a 404 there was an error in every console.
    A temporary redirect: in production the icon's static name carries its hash, which a
    deploy changes."""
    return redirect(static("crowdmint/favicon.svg"))


def _safe_next(request: HttpRequest, target: str | None) -> str:
    """Where to go after sign-in: a path on this site, never another site or a ``javascript:``
    URL (a crafted ``?next=`` would otherwise redirect or run script once the user signs in)."""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return "/"


def login_page(request: HttpRequest) -> HttpResponse:
    demo = [a.address for a in demo_accounts()] if settings.DEMO_MODE else []
    return render(
        request,
        "frontend/login.html",
        {"demo_addresses": demo, "next": _safe_next(request, request.GET.get("next"))},
    )


@require_POST
def demo_login(request: HttpRequest) -> HttpResponse:
    """Demo mode only: sign a real SIWE message with a seeded demo key, through the same checks."""
    if not settings.DEMO_MODE:
        raise Http404("Demo sign-in is off.")
    try:
        account = demo_account(int(request.POST.get("index", "-1")))
    except ValueError as exc:
        raise Http404("No such demo contributor.") from exc
    domain = settings.SIWE_DOMAIN or request.get_host()
    nonce = siwe_nonce_issue(domain=domain, chain_id=settings.SIWE_CHAIN_ID)
    message = siwe.SiweMessage(
        domain=domain,
        address=account.address,
        statement="Sign in to Crowdmint (demo wallet).",
        uri=request.build_absolute_uri("/"),
        version="1",
        chain_id=settings.SIWE_CHAIN_ID,
        nonce=nonce.nonce,
        issued_at=datetime.now(UTC).replace(microsecond=0),
    ).to_text()
    signature = account.sign_message(encode_defunct(text=message)).signature.to_0x_hex()
    try:
        result = siwe_sign_in(
            message=message, signature=signature, domain=domain, chain_id=settings.SIWE_CHAIN_ID
        )
    except SignInError as exc:
        messages.error(request, f"Sign-in failed: {exc.reason}")
        return redirect("frontend:login")
    session_sign_in(request, result)
    # The demo's seeded accounts all sign in from one browser: not a cluster of new arrivals.
    signed_in(request, dataclasses.replace(result, first_sign_in=False))
    return redirect(_safe_next(request, request.POST.get("next")))


def buyers_page(request: HttpRequest) -> HttpResponse:
    """The buyers' page: the catalogue, samples and exports, all read from the API with the
    buyer's key (entered in the page, kept in the tab's session storage)."""
    return render(request, "frontend/buyers.html")


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    # Revokes the bearer token the sign-in returned too: it outlived the session for a week.
    session_sign_out(request)
    return redirect("frontend:home")


def _contributor_page(request: HttpRequest) -> User:
    """The signed-in contributor; anyone else gets a 404."""
    user = request.user
    if not isinstance(user, User) or not user_is_contributor(user):
        raise Http404("Contributor pages need a wallet sign-in.")
    return user


@login_required
def label_page(request: HttpRequest, project_id: int) -> HttpResponse:
    """The labeling page. Progress comes from the server (it survives a reload); the page's
    script serves, answers, skips and undoes through the API."""
    user = _contributor_page(request)
    project = labeling_selectors.project_get_open(project_id=project_id)
    progress = labeling_selectors.progress_for_contributor(project=project, user=user)
    return render(
        request,
        "frontend/label.html",
        {"project": project, "progress": progress, "undo_seconds": settings.UNDO_SECONDS},
    )


@login_required
def contribute_page(request: HttpRequest, project_id: int) -> HttpResponse:
    _contributor_page(request)
    project = labeling_selectors.project_get_open(project_id=project_id)
    return render(
        request,
        "frontend/contribute.html",
        {
            "project": project,
            "upload_max_bytes": settings.UPLOAD_MAX_BYTES,
            "upload_max_size": f"{settings.UPLOAD_MAX_BYTES / 2**20:g} MB",
        },
    )


#: Credits shown per page of /me/rewards/.
CREDITS_PER_PAGE = 25


@login_required
def rewards_page(request: HttpRequest) -> HttpResponse:
    user = _contributor_page(request)
    summary = reward_summary_for_user(user=user)
    payouts = [(p, explorer_tx_url(p.batch.tx_hash)) for p in summary.payouts]
    skills = labeling_selectors.worker_skills_for_user(user=user)
    # Every credit, newest first, CREDITS_PER_PAGE at a time (only the latest 50 were shown, and
    # an older receipt was out of reach); a malformed or past-the-end page gives the nearest one.
    credits = Paginator(ledger_entries_for_user(user=user), CREDITS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "frontend/rewards.html",
        {"summary": summary, "payouts": payouts, "skills": skills, "credits": credits},
    )


@login_required
def receipt_page(request: HttpRequest, entry_id: int) -> HttpResponse:
    """One of my receipts, with what anyone needs to verify it against the chain."""
    user = _contributor_page(request)
    entry = ledger_entry_get_for_user(entry_id=entry_id, user=user)
    receipt = receipt_for_entry(entry=entry, asset=payout_asset())
    batch = receipt.batch
    return render(
        request,
        "frontend/receipt.html",
        {
            "receipt": receipt,
            "digest": "0x" + receipt_digest(receipt.body).hex(),
            # The exact text the digest is taken of, to copy and hash (canonical_json's bytes).
            "canonical": canonical_json(receipt.body).decode("utf-8"),
            "explorer_url": explorer_tx_url(batch.tx_hash) if batch else None,
        },
    )
