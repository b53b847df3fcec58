"""JSON bodies are bounded in size and nesting before Python's recursive parser sees them.

A body of 100,000 ``[`` used to kill the server process with SIGSEGV: py_ecc raises the recursion
limit to 100,000, so the C parser overflowed its stack instead of raising ``RecursionError``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.test import APIClient

from config.parsers import json_nesting_depth
from config.recursion import RECURSION_LIMIT
from tests.conftest import Contributor

pytestmark = pytest.mark.django_db

DEEP = 200_000


def deep_body(levels: int = DEEP) -> str:
    return "[" * levels + "]" * levels


def test_a_deeply_nested_body_gets_400_at_sign_in() -> None:
    response = APIClient().post("/api/v1/auth/siwe", deep_body(), content_type="application/json")
    assert response.status_code == 400
    assert "nested 200000 levels deep; the limit is 64" in response.json()["detail"]


def test_a_deeply_nested_object_gets_400_on_a_signed_in_endpoint(
    contributor: Contributor,
) -> None:
    body = '{"a":' * DEEP + "1" + "}" * DEEP
    response = contributor.api.post(
        "/api/v1/items/1/annotations/", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert "nested" in response.json()["detail"]


def test_brackets_inside_strings_do_not_count() -> None:
    assert json_nesting_depth('{"label": "[[[[[[[[[[{{{{{{{"}') == 1
    assert json_nesting_depth(r'["a \" [[[[", [[1]]]') == 3
    assert json_nesting_depth("7") == 0


@given(st.recursive(st.none() | st.integers() | st.text(), lambda c: st.lists(c, max_size=3)))
def test_the_depth_is_exact_for_any_json_document(document: Any) -> None:
    def depth(value: Any) -> int:
        if isinstance(value, list):
            return 1 + max((depth(v) for v in value), default=0)
        return 0

    assert json_nesting_depth(json.dumps(document)) == depth(document)


def test_a_body_nested_within_the_limit_is_parsed(contributor: Contributor) -> None:
    body = {"label": "x", "extra": [[[[["fine"]]]]]}
    response = contributor.api.post("/api/v1/items/999999/annotations/", body, format="json")
    assert response.status_code == 404  # parsed, validated, then no such item


def test_a_body_over_the_size_limit_gets_413(settings: Any) -> None:
    settings.API_JSON_MAX_BYTES = 1000
    body = json.dumps({"message": "x" * 2000, "signature": "0x"})
    response = APIClient().post("/api/v1/auth/siwe", body, content_type="application/json")
    assert response.status_code == 413
    assert "over 1000 bytes" in response.json()["detail"]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(constant: str) -> None:
    body = f'{{"message": {constant}, "signature": "0x"}}'
    response = APIClient().post("/api/v1/auth/siwe", body, content_type="application/json")
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]


def test_the_recursion_limit_is_sane_after_the_chain_libraries_are_loaded(chain: Any) -> None:
    # Django is set up (eth-account, hence py_ecc, is imported) and the embedded EVM exists
    # (py-evm is imported): both raise the limit on import, and it has been put back.
    import py_ecc  # noqa: F401

    assert sys.getrecursionlimit() == RECURSION_LIMIT
    with pytest.raises(RecursionError):
        json.loads(deep_body(50_000))


def test_a_key_repeated_in_an_object_is_a_400_naming_it(contributor: Contributor) -> None:
    # Python's parser kept the last value, others keep the first: a repeated key is refused.
    body = '{"label": "positive", "nested": {"x": 1, "x": 2}}'
    response = contributor.api.post(
        "/api/v1/items/1/annotations/", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "JSON parse error - the key 'x' is repeated in an object: give it once"
    )
