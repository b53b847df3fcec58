"""What other HTTP clients send (curl, Go, Java, requests, httpx, caches) gets a clear answer:
request bodies the API can't read are refused before a view runs, file endpoints serve their
file whatever ``Accept`` says, downloads honour conditional requests, and error responses keep
the headers a client acts on."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from labeling.models import Assignment, Project
from labeling.services import item_create_text
from tests.conftest import Contributor, give_grant
from tests.market.test_exports import accept, body, request_export

pytestmark = pytest.mark.django_db


@pytest.fixture
def texts(text_project: Project, buyer: User) -> Project:
    """A dataset the buyer holds a grant for, with two accepted records."""
    give_grant(text_project, buyer)
    accept(item_create_text(project=text_project, contributor=None, text="good"), "positive")
    accept(item_create_text(project=text_project, contributor=None, text="bad"), "negative")
    return text_project


SIWE = "/api/v1/auth/siwe"
JSON_BODY = b'{"message": "x", "signature": "0x"}'


@pytest.mark.parametrize(
    "charset", ["rot13", "base64", "hex", "zlib", "bz2", "uu", "quopri", "undefined", "no-such"]
)
def test_a_charset_that_is_not_a_text_encoding_is_a_415(charset: str) -> None:
    for content_type in ("application/json", "application/x-www-form-urlencoded"):
        response = APIClient().post(
            SIWE, JSON_BODY, content_type=f"{content_type}; charset={charset}"
        )
        assert response.status_code == 415, (content_type, response.content)
        assert response.json()["detail"] == f"unsupported charset {charset!r}: send UTF-8"


def test_bodies_in_other_text_encodings_are_still_read(contributor: Contributor) -> None:
    body = '{"label": "é"}'.encode("utf-16")
    response = contributor.api.post(
        "/api/v1/items/999999/annotations/",
        body,
        content_type="application/json; charset=utf-16",
    )
    assert response.status_code == 404  # parsed, then no such item


def test_a_byte_order_mark_before_json_is_ignored(contributor: Contributor) -> None:
    response = contributor.api.post(
        "/api/v1/items/999999/annotations/",
        "\ufeff".encode() + b'{"label": "x"}',
        content_type="application/json",
    )
    assert response.status_code == 404  # parsed, then no such item


@pytest.mark.parametrize("coding", ["gzip", "br", "deflate", "x-gzip, identity"])
def test_a_compressed_body_is_a_415(coding: str) -> None:
    response = APIClient().post(
        SIWE, JSON_BODY, content_type="application/json", HTTP_CONTENT_ENCODING=coding
    )
    assert response.status_code == 415
    assert "Content-Encoding" in response.json()["detail"]
    plain = APIClient().post(
        SIWE, JSON_BODY, content_type="application/json", HTTP_CONTENT_ENCODING="identity"
    )
    assert plain.status_code != 415


def test_a_chunked_body_without_a_length_is_a_411() -> None:
    response = APIClient().generic(
        "POST",
        SIWE,
        JSON_BODY,
        content_type="application/json",
        HTTP_TRANSFER_ENCODING="chunked",
        CONTENT_LENGTH="",
    )
    assert response.status_code == 411
    assert response.json()["detail"] == "length required: send the body with a Content-Length"


def test_a_form_body_is_bounded_like_a_json_one(
    contributor: Contributor, text_project: Project, settings: Any
) -> None:
    settings.API_JSON_MAX_BYTES = 1000
    response = contributor.api.post(
        f"/api/v1/projects/{text_project.pk}/items/",
        b"licence_accepted=true&text=" + b"a" * 5000,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 413
    assert response.json()["detail"] == "the form body is over 1000 bytes"


def test_a_form_body_with_invalid_utf8_escapes_is_a_400_not_a_replacement_character(
    contributor: Contributor, text_project: Project
) -> None:
    response = contributor.api.post(
        f"/api/v1/projects/{text_project.pk}/items/",
        b"licence_accepted=true&text=caf%E9",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400
    assert "not valid utf-8" in response.json()["detail"]
    assert not text_project.items.exists()


def test_a_multipart_body_over_the_limit_is_a_413(
    contributor: Contributor, text_project: Project, settings: Any
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = contributor.api.post(
        f"/api/v1/projects/{text_project.pk}/items/",
        {"licence_accepted": "true", "text": "a" * 5000},
        format="multipart",
    )
    assert response.status_code == 413
    assert response.json()["detail"] == "request body too large: the limit is 1000 bytes"


def test_an_answer_sent_as_a_form_is_a_415_naming_json(contributor: Contributor) -> None:
    response = contributor.api.post(
        "/api/v1/items/1/annotations/",
        b"label=positive",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 415
    assert "application/x-www-form-urlencoded" in response.json()["detail"]


def test_an_unknown_class_is_named_briefly(contributor: Contributor, text_project: Project) -> None:
    item = item_create_text(project=text_project, contributor=None, text="brief")
    contributor.api.get(f"/api/v1/projects/{text_project.pk}/next-task/")
    response = contributor.api.post(
        f"/api/v1/items/{item.pk}/annotations/", {"label": "x" * 100_000}, format="json"
    )
    assert response.status_code == 400
    assert len(response.content) < 1000
    assert response.json()["detail"].startswith("label: unknown class 'xxxx")


def test_a_head_request_leases_nothing(contributor: Contributor, text_project: Project) -> None:
    item_create_text(project=text_project, contributor=None, text="keep my place")
    url = f"/api/v1/projects/{text_project.pk}/next-task/"
    response = contributor.api.head(url)
    assert response.status_code == 405 and "HEAD" not in response["Allow"]
    assert not Assignment.objects.exists()
    assert contributor.api.get(url).status_code == 200
    assert Assignment.objects.count() == 1


def test_error_headers_survive_the_json_rewrite() -> None:
    response = APIClient().put("/api/v1/schema")
    assert response.status_code == 405
    assert response.json()["detail"] == 'Method "PUT" not allowed.'
    assert "GET" in response["Allow"]


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("2", 200),
        ("5000", 200),  # more than a page holds: the most it holds
        ("9" * 5000, 200),
        ("0", 400),
        ("-1", 400),
        ("abc", 400),
        ("1.5", 400),
        ("\uff12", 400),
    ],
)
def test_page_size_is_a_whole_number_in_range(
    buyer_api: APIClient, texts: Project, value: str, status: int
) -> None:
    response = buyer_api.get(f"/api/v1/datasets/{texts.pk}/records/", {"page_size": value})
    assert response.status_code == status, response.json()
    if status == 400:
        assert response.json()["detail"].startswith("page_size: ")
    repeated = buyer_api.get(f"/api/v1/datasets/{texts.pk}/records/?page_size=2&page_size=3")
    assert repeated.status_code == 400
    assert repeated.json()["detail"] == "page_size: give it once"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("min_labels", "\uff11"),
        ("min_confidence", "\uff10.5"),
        ("decided_after", "\uff12020-01-01"),
    ],
)
def test_filters_read_ascii_digits_only(
    buyer_api: APIClient, texts: Project, name: str, value: str
) -> None:
    response = buyer_api.get(f"/api/v1/datasets/{texts.pk}/records/", {name: value})
    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"{name}: ")


@pytest.mark.parametrize(
    "accept", ["text/csv", "application/octet-stream", "application/x-ndjson", "text/html"]
)
def test_the_stream_and_the_download_serve_their_file_whatever_accept_says(
    buyer_api: APIClient,
    texts: Project,
    django_capture_on_commit_callbacks: Any,
    accept: str,
) -> None:
    stream = buyer_api.get(
        f"/api/v1/datasets/{texts.pk}/export", {"format": "csv"}, HTTP_ACCEPT=accept
    )
    assert stream.status_code == 200 and stream["Content-Type"].startswith("text/csv")
    done = request_export(buyer_api, texts, django_capture_on_commit_callbacks, "jsonl")
    download = buyer_api.get(done["download_url"], HTTP_ACCEPT=accept)
    assert download.status_code == 200 and len(body(download)) == done["size_bytes"]


def test_downloads_answer_conditional_requests(
    buyer_api: APIClient,
    texts: Project,
    django_capture_on_commit_callbacks: Any,
) -> None:
    done = request_export(buyer_api, texts, django_capture_on_commit_callbacks, "jsonl")
    url, tag = done["download_url"], f'"{done["sha256"]}"'
    cached = buyer_api.get(url, HTTP_IF_NONE_MATCH=f'"other", W/{tag}')
    assert cached.status_code == 304 and cached["ETag"] == tag and cached.content == b""
    assert buyer_api.get(url, HTTP_IF_NONE_MATCH='"other"').status_code == 200
    changed = buyer_api.get(url, HTTP_IF_MATCH='"other"')
    assert changed.status_code == 412 and changed.json()["detail"].endswith(tag)
    assert buyer_api.get(url, HTTP_IF_MATCH=tag).status_code == 200
    assert buyer_api.get(url, HTTP_IF_MATCH="*").status_code == 200


def test_a_range_of_an_empty_file_is_the_whole_empty_file(
    buyer_api: APIClient,
    texts: Project,
    django_capture_on_commit_callbacks: Any,
) -> None:
    done = request_export(
        buyer_api,
        texts,
        django_capture_on_commit_callbacks,
        "jsonl",
        label="positive",
        min_confidence=1,
    )
    assert done["size_bytes"] == 0
    for header in ("bytes=-10", "bytes=0-", "bytes=0-5"):
        response = buyer_api.get(done["download_url"], HTTP_RANGE=header)
        assert response.status_code == 200 and body(response) == b""
        assert "Content-Range" not in response


def test_a_format_without_a_companion_file_says_so(
    buyer_api: APIClient, texts: Project, django_capture_on_commit_callbacks: Any
) -> None:
    done = request_export(buyer_api, texts, django_capture_on_commit_callbacks, "jsonl")
    response = buyer_api.get(f"/api/v1/exports/{done['id']}/card")
    assert response.status_code == 409
    assert response.json()["detail"].startswith("a jsonl export has no companion file")
