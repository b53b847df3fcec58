"""Every response carries a Content-Security-Policy, and no page relies on inline script or style
(the policy forbids both; the browser test checks that no page reports a violation)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from config.middleware import API_POLICY, DOCS_POLICY, PAGE_POLICY
from labeling.models import Project

pytestmark = pytest.mark.django_db

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I)
INLINE_STYLE = re.compile(r"<style\b|\sstyle=\"|\son[a-z]+=\"", re.I)


def pages(project: Project) -> list[str]:
    return [
        "/",
        "/login/",
        f"/projects/{project.pk}/label/",
        f"/projects/{project.pk}/contribute/",
        "/me/rewards/",
    ]


def assert_no_inline_code(html: str, path: str) -> None:
    assert not INLINE_SCRIPT.search(html), f"inline <script> on {path}"
    assert not INLINE_STYLE.search(html), f"inline style or handler on {path}"


def test_contributor_pages_send_the_page_policy_and_have_no_inline_code(
    contributor: Any, text_project: Project
) -> None:
    browser = Client()
    browser.force_login(contributor.user)
    for path in pages(text_project):
        page = browser.get(path)
        assert page.status_code == 200, path
        assert page["Content-Security-Policy"] == PAGE_POLICY
        assert_no_inline_code(page.content.decode(), path)
    assert "script-src 'self';" in PAGE_POLICY and "unsafe-inline" not in PAGE_POLICY


def test_admin_pages_send_the_page_policy_and_have_no_inline_code(
    moderator: User, text_project: Project
) -> None:
    browser = Client()
    browser.force_login(moderator)
    for path in [
        "/admin/",
        "/admin/rewards/payoutbatch/",
        "/admin/labeling/item/",
        f"/admin/labeling/project/{text_project.pk}/change/",
        "/admin/accounts/user/",
    ]:
        page = browser.get(path)
        assert page.status_code == 200, path
        assert page["Content-Security-Policy"] == PAGE_POLICY
        assert_no_inline_code(page.content.decode(), path)


def test_the_api_sends_a_policy_that_loads_nothing() -> None:
    response = Client().get("/api/v1/projects/")
    assert response["Content-Security-Policy"] == API_POLICY


def test_the_docs_page_is_served_without_any_outside_host() -> None:
    page = Client().get("/api/v1/docs")
    assert page.status_code == 200
    assert page["Content-Security-Policy"] == DOCS_POLICY
    html = page.content.decode()
    assert "googleapis" not in html and "https://" not in html
    assert_no_inline_code(html, "/api/v1/docs")
