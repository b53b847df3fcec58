"""Response rules for the whole site: JSON errors under ``/api/`` and a Content-Security-Policy."""

from __future__ import annotations

import codecs
import logging
from collections.abc import Callable

from django.conf import settings
from django.contrib.messages.middleware import MessageMiddleware
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseBase,
    HttpResponsePermanentRedirect,
    JsonResponse,
)
from django.http.request import RawPostDataException
from django.urls import is_valid_path
from django.utils.cache import add_never_cache_headers
from django.utils.http import parse_header_parameters

logger = logging.getLogger("django.request")

API_PREFIX = "/api/"
DOCS_PATH = "/api/v1/docs"

Handler = Callable[[HttpRequest], HttpResponseBase]

_REASONS = {
    400: "bad request",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    411: "length required",
    413: "request body too large",
    429: "too many requests",
    500: "internal server error: the error was logged",
}


def _json_error(status: int, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status)


def _is_json(response: HttpResponseBase) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


# Headers of an error response that a client acts on: kept when the error is rewritten as JSON.
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Content-Range", "Vary")


def _body_refused(request: HttpRequest) -> JsonResponse | None:
    """A request body the API can't read, refused before any view parses it: a charset that
    isn't a text encoding (``charset=rot13``, ``=base64``: Python codecs, but not charsets, and
    parsing with them raised), a compressed body (``Content-Encoding``: no parser inflates it,
    so a gzip body read as "not valid utf-8" and a ``br`` one was taken as plain), and a chunked
    body without a length (WSGI servers hand the application an empty body: a valid request
    failed with a misleading message about a missing field)."""
    meta = request.META
    content_type = meta.get("CONTENT_TYPE", "")
    if content_type:
        charset = parse_header_parameters(content_type)[1].get("charset")
        if charset is not None and not _is_text_encoding(charset):
            return _json_error(415, f"unsupported charset {charset[:40]!r}: send UTF-8")
    coding = meta.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if coding and coding != "identity":
        return _json_error(
            415, f"unsupported Content-Encoding {coding[:40]!r}: send the body uncompressed"
        )
    chunked = "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
    if chunked and not meta.get("CONTENT_LENGTH"):
        return _json_error(411, "length required: send the body with a Content-Length")
    return None


def _is_text_encoding(name: str) -> bool:
    try:
        info = codecs.lookup(name)
        if not getattr(info, "_is_text_encoding", True):
            return False
        b"{}".decode(info.name)  # "undefined" is a text encoding that decodes nothing
    except (LookupError, UnicodeError):
        return False
    return True


def _wants_slash(request: HttpRequest) -> bool:
    """Whether Django's ``CommonMiddleware`` would redirect ``request`` to its path plus "/"."""
    path = request.path_info
    if not settings.APPEND_SLASH or path.endswith("/"):
        return False
    urlconf = getattr(request, "urlconf", None)
    return not is_valid_path(path, urlconf) and bool(is_valid_path(f"{path}/", urlconf))


def _slash_extra(request: HttpRequest) -> bool:
    """Whether ``request``'s path ends in a "/" its endpoint doesn't have (``/skip/``)."""
    path = request.path_info
    if path == "/" or not path.endswith("/"):
        return False
    urlconf = getattr(request, "urlconf", None)
    return not is_valid_path(path, urlconf) and bool(is_valid_path(path.rstrip("/"), urlconf))


class ApiErrorMiddleware:
    """Every error under ``/api/`` is JSON with a ``detail`` message, whoever produced it.

    DRF views already answer JSON. What remains are Django's own pages: a path no route matches
    (``/api/v1/items/-1/annotations/``), a query string with more than
    ``DATA_UPLOAD_MAX_NUMBER_FIELDS`` parameters (raised inside DRF's content negotiation, where
    it became a 500), unhandled exceptions, and a write to an endpoint's path without its
    trailing slash (``POST /api/v1/projects/1/items``): Django's ``APPEND_SLASH`` would redirect
    it, which drops the body and turns the POST into a GET in most clients (and is a 500 under
    ``DEBUG``), so it is a 404 naming the path to use; the same for a path with a trailing slash
    its endpoint doesn't have (``POST /api/v1/items/1/skip/``), whose reads are redirected as
    ``APPEND_SLASH`` redirects the others. Pages outside ``/api/`` are left alone.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        try:
            # Parse the query string here: a SuspiciousOperation later would surface inside DRF's
            # exception handling, which itself reads the query string again.
            request.GET  # noqa: B018
        except SuspiciousOperation as exc:
            return _json_error(400, f"bad request: {exc}")
        refused = _body_refused(request)
        if refused is not None:
            return refused
        if request.method not in ("GET", "HEAD") and _wants_slash(request):
            return _json_error(
                404,
                f"not found: no API endpoint at {request.path}; this one is "
                f"{request.path}/ (with the trailing slash)",
            )
        if _slash_extra(request):
            # The mirror of APPEND_SLASH for the endpoints named without one (``/skip``): a read is
            # redirected, a write is told where to go (a redirect would drop its body).
            bare = request.path.rstrip("/")
            if request.method in ("GET", "HEAD"):
                query = request.META.get("QUERY_STRING", "")
                return HttpResponsePermanentRedirect(f"{bare}?{query}" if query else bare)
            return _json_error(
                404,
                f"not found: no API endpoint at {request.path}; this one is "
                f"{bare} (without the trailing slash)",
            )
        response = self.get_response(request)
        if response.status_code >= 400 and not _is_json(response):
            status = response.status_code
            data = getattr(response, "data", None)  # a DRF error rendered as YAML or HTML
            if isinstance(data, dict) and isinstance(data.get("detail"), str):
                detail = data["detail"]
            elif status == 404:
                detail = f"not found: no API endpoint at {request.path} (see /api/v1/docs)"
            else:
                detail = _REASONS.get(status, response.reason_phrase.lower())
            rewritten = _json_error(status, detail)
            for header in _KEPT_HEADERS:
                if header in response:
                    rewritten[header] = response[header]
            return rewritten
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith(API_PREFIX):
            return None
        if isinstance(exception, RequestDataTooBig):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return _json_error(413, f"request body too large: the limit is {limit} bytes")
        if isinstance(exception, SuspiciousOperation | RawPostDataException):
            return _json_error(400, f"bad request: {exception}")
        logger.error(
            "Internal Server Error: %s",
            request.path,
            exc_info=exception,
            extra={"status_code": 500, "request": request},
        )
        return _json_error(500, _REASONS[500])


class NulCharacterMiddleware:
    """A query string with a NUL character (``?status__exact=%00``) is a 400.

    PostgreSQL text cannot hold NUL, and psycopg2 raises ``ValueError`` when a filter value
    carries one: in the admin's list filters and any API filter passed to a query, a 500 on
    PostgreSQL only. Forms already refuse NUL (Django's ``ProhibitNullCharactersValidator``); this
    refuses it in query strings, for every view at once. JSON under ``/api/``.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        query = request.META.get("QUERY_STRING", "")
        if ("%00" in query or "\x00" in query) and any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in request.GET.lists()
        ):
            detail = "bad request: a query parameter contains a NUL character"
            if request.path.startswith(API_PREFIX):
                return _json_error(400, detail)
            return HttpResponseBadRequest(detail, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


class PrivateCacheMiddleware:
    """An answer to a signed-in request (a session cookie, or an ``Authorization`` header) that
    doesn't say how it may be cached is never stored: a contributor's rewards, receipts and
    labels, a buyer's records, would otherwise sit in a shared proxy or on a shared computer's
    disk after sign-out. Answers that set their own ``Cache-Control`` keep it; static files are
    served before this runs."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        signed_in = "HTTP_AUTHORIZATION" in request.META or bool(
            request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        )
        if signed_in and not response.has_header("Cache-Control"):
            add_never_cache_headers(response)  # no-store, private
        return response


# Contributor pages and admin: scripts, styles, images and requests only from this site; no
# inline script or style (the pages' JS lives in static files), no framing, no plugins.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# Redoc (the API docs page) injects its own <style> elements and runs a search worker from blob:.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; "
    "object-src 'none'; base-uri 'self'; form-action 'none'; frame-ancestors 'none'"
)
# API answers (JSON, image bytes) are never documents: nothing in them may load or run.
API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def content_security_policy(path: str) -> str:
    if path.startswith(DOCS_PATH):
        return DOCS_POLICY
    if path.startswith(API_PREFIX):
        return API_POLICY
    return PAGE_POLICY


class ContentSecurityPolicyMiddleware:
    """Sends ``Content-Security-Policy`` on every response that has none of its own."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = content_security_policy(request.path)
        return response


class PageMessageMiddleware(MessageMiddleware):
    """Django's messages (the one-time notices of the pages and the admin), not set up for
    ``/api/`` requests: the API never shows one, and the storage each request built (a cookie and a
    session backend) was a thirtieth of a label submit's CPU."""

    def process_request(self, request: HttpRequest) -> None:
        if not request.path.startswith(API_PREFIX):
            super().process_request(request)
