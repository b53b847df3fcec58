"""Sign-In with Ethereum (EIP-4361): the grammar, the canonical text, and verification."""

from __future__ import annotations

import contextlib
import dataclasses
import string
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.siwe import (
    ISSUED_AT_SKEW,
    MAX_MESSAGE_LENGTH,
    SiweError,
    SiweMessage,
    generate_nonce,
    parse_message,
    verify_message,
)

# --- the examples from EIP-4361 ("Examples" section), verbatim ---

EIP_ADDRESS = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
EIP_BODY = """\
0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2

I accept the ExampleOrg Terms of Service: https://example.com/tos

URI: https://example.com/login
Version: 1
Chain ID: 1
Nonce: 32891756
Issued At: 2021-09-30T16:25:24Z
Resources:
- ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/
- https://example.com/my-web2-claim.json"""
HEADER = " wants you to sign in with your Ethereum account:\n"
EIP_IMPLICIT_SCHEME = "example.com" + HEADER + EIP_BODY
EIP_EXPLICIT_PORT = "example.com:3388" + HEADER + EIP_BODY
EIP_EXPLICIT_SCHEME = "https://example.com" + HEADER + EIP_BODY

# Every optional field, no statement (so two blank lines after the address, as the ABNF says).
ALL_OPTIONAL_FIELDS = """\
https://example.com:8443 wants you to sign in with your Ethereum account:
0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2


URI: https://example.com:8443/login?next=%2Fdashboard#top
Version: 1
Chain ID: 137
Nonce: a1B2c3D4e5F6g7H8
Issued At: 2021-09-30T16:25:24.123+02:00
Expiration Time: 2021-10-01T16:25:24Z
Not Before: 2021-09-30T16:00:00.000001-05:30
Request ID: req-42:sign-in@crowdmint
Resources:
- urn:recap:eyJhdHQiOnt9fQ"""


def test_it_parses_the_eip_example_with_an_implicit_scheme() -> None:
    message = parse_message(EIP_IMPLICIT_SCHEME)

    assert message == SiweMessage(
        domain="example.com",
        address=EIP_ADDRESS,
        statement="I accept the ExampleOrg Terms of Service: https://example.com/tos",
        uri="https://example.com/login",
        version="1",
        chain_id=1,
        nonce="32891756",
        issued_at=datetime(2021, 9, 30, 16, 25, 24, tzinfo=UTC),
        resources=(
            "ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/",
            "https://example.com/my-web2-claim.json",
        ),
    )
    assert message.scheme is None


def test_it_parses_the_eip_examples_with_a_port_and_with_a_scheme() -> None:
    assert parse_message(EIP_EXPLICIT_PORT).domain == "example.com:3388"
    with_scheme = parse_message(EIP_EXPLICIT_SCHEME)
    assert (with_scheme.scheme, with_scheme.domain) == ("https", "example.com")


@pytest.mark.parametrize(
    "text",
    [EIP_IMPLICIT_SCHEME, EIP_EXPLICIT_PORT, EIP_EXPLICIT_SCHEME, ALL_OPTIONAL_FIELDS],
    ids=["implicit-scheme", "explicit-port", "explicit-scheme", "all-optional-fields"],
)
def test_canonical_text_round_trips_exactly(text: str) -> None:
    assert parse_message(text).to_text() == text


def test_a_statement_that_looks_like_a_field_is_still_the_statement() -> None:
    text = EIP_IMPLICIT_SCHEME.replace(
        "I accept the ExampleOrg Terms of Service: https://example.com/tos",
        "URI: https://evil.example/",
    )

    message = parse_message(text)

    assert (message.statement, message.uri) == (
        "URI: https://evil.example/",
        "https://example.com/login",
    )
    assert message.to_text() == text


def test_it_parses_every_optional_field() -> None:
    message = parse_message(ALL_OPTIONAL_FIELDS)

    assert message.scheme == "https"
    assert message.domain == "example.com:8443"
    assert message.statement is None
    assert message.chain_id == 137
    assert message.issued_at == datetime(
        2021, 9, 30, 16, 25, 24, 123000, tzinfo=timezone(timedelta(hours=2))
    )
    assert message.expiration_time == datetime(2021, 10, 1, 16, 25, 24, tzinfo=UTC)
    assert message.not_before == datetime(
        2021, 9, 30, 16, 0, 0, 1, tzinfo=timezone(-timedelta(hours=5, minutes=30))
    )
    assert message.request_id == "req-42:sign-in@crowdmint"
    assert message.resources == ("urn:recap:eyJhdHQiOnt9fQ",)


def test_an_empty_request_id_is_kept_apart_from_none() -> None:
    text = EIP_IMPLICIT_SCHEME.replace("Resources:", "Request ID: \nResources:")

    message = parse_message(text)

    assert message.request_id == ""
    assert message.to_text() == text


def test_it_normalises_what_the_grammar_lets_vary() -> None:
    # What JavaScript's toISOString() writes, a "+00:00" offset, a leading-zero chain id and an
    # empty resource list are all valid; to_text() writes the canonical form of each.
    text = (
        EIP_IMPLICIT_SCHEME.split("\nResources:")[0]
        .replace("Chain ID: 1", "Chain ID: 0001")
        .replace("16:25:24Z", "16:25:24.000+00:00")
        + "\nResources:"
    )

    message = parse_message(text)

    assert message.chain_id == 1
    assert message.issued_at == datetime(2021, 9, 30, 16, 25, 24, tzinfo=UTC)
    assert message.resources == ()
    assert message.to_text() == EIP_IMPLICIT_SCHEME.split("\nResources:")[0]


def test_it_accepts_lower_case_t_and_z_and_truncates_nanoseconds() -> None:
    text = EIP_IMPLICIT_SCHEME.replace("2021-09-30T16:25:24Z", "2021-09-30t16:25:24.123456789z")

    assert parse_message(text).issued_at == datetime(2021, 9, 30, 16, 25, 24, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    "domain",
    ["localhost:8000", "127.0.0.1", "[::1]:8000", "[v1.fe80::a+en1]", "user:pw@example.com"],
)
def test_it_accepts_every_kind_of_rfc_3986_authority(domain: str) -> None:
    assert parse_message(EIP_IMPLICIT_SCHEME.replace("example.com", domain, 1)).domain == domain


# --- grammar violations ---


def _replace_line(text: str, prefix: str, new_line: str | None) -> str:
    lines = text.split("\n")
    index = next(i for i, line in enumerate(lines) if line.startswith(prefix))
    if new_line is None:
        del lines[index]
    else:
        lines[index] = new_line
    return "\n".join(lines)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace(EIP_ADDRESS, EIP_ADDRESS.lower()),
            "invalid address checksum",
            id="lower-case-address",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace(EIP_ADDRESS, "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756cC2"),
            "invalid address checksum",
            id="wrong-checksum",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace(EIP_ADDRESS, EIP_ADDRESS[:-1]),
            "invalid address",
            id="short-address",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace(EIP_ADDRESS, "vitalik.eth"),
            "invalid address",
            id="ens-name-for-address",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace("Version: 1", "Version: 2"),
            "unsupported version",
            id="version-2",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace("Nonce: 32891756", "Nonce: 3289175"),
            "invalid nonce",
            id="nonce-too-short",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace("Nonce: 32891756", "Nonce: 32891756-abc"),
            "invalid nonce",
            id="nonce-not-alphanumeric",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace("Nonce: 32891756", "Nonce: 3289175٦"),
            "invalid nonce",
            id="nonce-non-ascii-digit",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace("Chain ID: 1", "Chain ID: -1"),
            "invalid chain id",
            id="negative-chain-id",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace("Chain ID: 1", "Chain ID: 0x1"),
            "invalid chain id",
            id="hex-chain-id",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace("16:25:24Z", "16:25:24"),
            "invalid issued-at",
            id="no-timezone",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace("2021-09-30T16:25:24Z", "2021-02-30T16:25:24Z"),
            "invalid issued-at",
            id="february-30",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace("2021-09-30T16:25:24Z", "2021-09-30 16:25:24Z"),
            "invalid issued-at",
            id="space-for-t",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace("16:25:24Z", "16:25:24+24:00"),
            "invalid issued-at",
            id="offset-out-of-range",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace("Resources:", "Expiration Time: tomorrow\nResources:"),
            "invalid expiration time",
            id="bad-expiration-time",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace("Resources:", "Not Before: 1632932724\nResources:"),
            "invalid not-before",
            id="bad-not-before",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace("Resources:", "Request ID: two words\nResources:"),
            "invalid request id",
            id="bad-request-id",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace("URI: https://example.com/login", "URI: /login"),
            "invalid uri",
            id="relative-uri",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace("- https://example.com/my-web2-claim.json", "- claim"),
            "invalid resource",
            id="relative-resource",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace("Terms of Service", "Terms of Service 100%"),
            "invalid statement",
            id="statement-outside-abnf",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace("example.com wants", "exa mple.com wants"),
            "invalid domain",
            id="space-in-domain",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace("example.com wants", "example.com/login wants"),
            "invalid domain",
            id="path-in-domain",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace("example.com wants", "[::1%eth0] wants"),
            "invalid domain",
            id="ipv6-zone-id",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace("example.com wants", ":8000 wants"),
            "invalid domain",
            id="no-host",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace("example.com wants", "ht_tps://example.com wants"),
            "invalid scheme",
            id="bad-scheme",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace("sign in with your Ethereum", "sign in with your ethereum"),
            "invalid header",
            id="header-case",
        ),
        pytest.param(
            _replace_line(EIP_IMPLICIT_SCHEME, "URI: ", None),
            "missing uri",
            id="missing-uri",
        ),
        pytest.param(
            _replace_line(EIP_IMPLICIT_SCHEME, "Version: ", None),
            "missing version",
            id="missing-version",
        ),
        pytest.param(
            _replace_line(EIP_IMPLICIT_SCHEME, "Chain ID: ", None),
            "missing chain id",
            id="missing-chain-id",
        ),
        pytest.param(
            _replace_line(EIP_IMPLICIT_SCHEME, "Nonce: ", None),
            "missing nonce",
            id="missing-nonce",
        ),
        pytest.param(
            _replace_line(EIP_IMPLICIT_SCHEME, "Issued At: ", None),
            "missing issued-at",
            id="missing-issued-at",
        ),
        pytest.param(
            _replace_line(EIP_IMPLICIT_SCHEME, "Chain ID: ", "Chain Id: 1"),
            "missing chain id",
            id="field-name-case",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace("Version: 1\nChain ID: 1", "Chain ID: 1\nVersion: 1"),
            "missing version",
            id="fields-out-of-order",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.split("\n", 1)[0],
            "missing address",
            id="header-only",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace(EIP_ADDRESS + "\n\n", EIP_ADDRESS + "\n"),
            "missing blank line after address",
            id="no-blank-line-after-address",
        ),
        pytest.param(
            # What some client libraries emit without a statement: one blank line, not two.
            EIP_IMPLICIT_SCHEME.replace(
                "\n\nI accept the ExampleOrg Terms of Service: https://example.com/tos\n", "\n"
            ),
            "missing blank line before URI",
            id="single-blank-line-without-statement",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME + "\n",
            "unexpected trailing content",
            id="trailing-line-break",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace("\n", "\r\n"),
            "invalid header",
            id="crlf",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME.replace(
                "Resources:",
                "Not Before: 2021-09-30T16:25:24Z\nExpiration Time: 2021-10-30T16:25:24Z\n"
                "Resources:",
            ),
            "unexpected trailing content",
            id="optional-fields-out-of-order",
        ),
        pytest.param(
            EIP_IMPLICIT_SCHEME + "\nSignature: 0x00",
            "unexpected trailing content",
            id="unknown-trailing-field",
        ),
        pytest.param("", "invalid header", id="empty"),
        pytest.param("x" * (MAX_MESSAGE_LENGTH + 1), "message too long", id="too-long"),
    ],
)
def test_it_rejects_text_outside_the_grammar(text: str, reason: str) -> None:
    with pytest.raises(SiweError) as excinfo:
        parse_message(text)
    assert excinfo.value.reason == reason


def test_a_message_cannot_be_built_with_fields_that_would_not_parse() -> None:
    valid = parse_message(EIP_IMPLICIT_SCHEME)
    bad_fields = {
        "statement": ("two\nlines", "invalid statement"),
        "nonce": ("short", "invalid nonce"),
        "chain_id": (True, "invalid chain id"),
        "issued_at": (datetime(2021, 9, 30, 16, 25, 24), "invalid issued-at"),
        "expiration_time": (
            datetime(2021, 9, 30, tzinfo=timezone(timedelta(seconds=30))),
            "invalid expiration time",
        ),
        "resources": ("https://example.com", "invalid resource"),
        "address": (EIP_ADDRESS.lower(), "invalid address checksum"),
    }
    for field, (value, reason) in bad_fields.items():
        with pytest.raises(SiweError) as excinfo:
            dataclasses.replace(valid, **{field: value})
        assert excinfo.value.reason == reason, field


def test_an_empty_statement_is_rejected_because_it_would_read_back_as_none() -> None:
    with pytest.raises(SiweError, match="invalid statement"):
        dataclasses.replace(parse_message(EIP_IMPLICIT_SCHEME), statement="")


def test_resources_given_as_a_list_are_stored_as_a_tuple() -> None:
    message = dataclasses.replace(parse_message(EIP_IMPLICIT_SCHEME), resources=["https://a.b/"])
    assert message.resources == ("https://a.b/",)
    hash(message)


# --- nonces ---


def test_nonces_are_long_random_and_alphanumeric() -> None:
    nonces = {generate_nonce() for _ in range(200)}

    assert len(nonces) == 200
    for nonce in nonces:
        assert len(nonce) >= 17  # 17 * log2(62) > 96 bits
        assert set(nonce) <= set(string.ascii_letters + string.digits)


def test_a_generated_nonce_is_valid_in_a_message() -> None:
    nonce = generate_nonce()
    assert parse_message(EIP_IMPLICIT_SCHEME.replace("32891756", nonce)).nonce == nonce


# --- verification ---

# Throwaway keys derived from fixed seeds, so failures are reproducible. They hold nothing.
CONTRIBUTOR: LocalAccount = Account.from_key(keccak(text="crowdmint test contributor"))
STRANGER: LocalAccount = Account.from_key(keccak(text="crowdmint test stranger"))
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
NONCE = "k3Jd9Qm2Xv8Lp4Rt7Wz1Ab"


def contributor_message(**changes: Any) -> str:
    fields: dict[str, Any] = {
        "domain": "crowdmint.example",
        "address": CONTRIBUTOR.address,
        "statement": "Sign in to Crowdmint.",
        "uri": "https://crowdmint.example/login",
        "version": "1",
        "chain_id": 8453,
        "nonce": NONCE,
        "issued_at": NOW - timedelta(seconds=30),
        "expiration_time": NOW + timedelta(minutes=10),
    }
    return SiweMessage(**{**fields, **changes}).to_text()


def sign(text: str, account: LocalAccount = CONTRIBUTOR) -> str:
    signature = account.sign_message(encode_defunct(text=text)).signature
    return "0x" + bytes(signature).hex()


def verify(
    text: str,
    signature: str | None = None,
    *,
    domain: str = "crowdmint.example",
    chain_id: int = 8453,
    nonce: str = NONCE,
    uri_prefix: str | None = None,
    now: datetime | None = NOW,
    scheme: str = "https",
) -> SiweMessage:
    return verify_message(
        text,
        sign(text) if signature is None else signature,
        domain=domain,
        chain_id=chain_id,
        nonce=nonce,
        uri_prefix=uri_prefix,
        now=now,
        scheme=scheme,
    )


def assert_refused(reason: str, text: str, signature: str | None = None, **kwargs: Any) -> None:
    with pytest.raises(SiweError) as excinfo:
        verify(text, signature, **kwargs)
    assert excinfo.value.reason == reason


def test_a_message_signed_by_its_address_verifies() -> None:
    text = contributor_message()

    message = verify(text)

    assert message.address == CONTRIBUTOR.address
    assert message == parse_message(text)


def test_it_returns_the_checksummed_address() -> None:
    assert verify(contributor_message()).address == to_checksum_address(CONTRIBUTOR.address.lower())


def test_it_accepts_v_as_a_bare_recovery_id() -> None:
    text = contributor_message()
    signature = sign(text)
    bare_v = signature[:-2] + f"{int(signature[-2:], 16) - 27:02x}"

    assert bare_v[-2:] in ("00", "01")
    assert verify(text, bare_v).address == CONTRIBUTOR.address


def test_it_accepts_upper_case_hex_in_the_signature() -> None:
    text = contributor_message()
    assert verify(text, "0x" + sign(text)[2:].upper()).address == CONTRIBUTOR.address


def test_it_verifies_the_eip_example_signed_with_a_real_key() -> None:
    text = EIP_EXPLICIT_SCHEME.replace(EIP_ADDRESS, CONTRIBUTOR.address)

    message = verify(
        text,
        domain="example.com",
        chain_id=1,
        nonce="32891756",
        now=datetime(2021, 9, 30, 16, 30, tzinfo=UTC),
    )

    assert message.address == CONTRIBUTOR.address


def test_it_accepts_a_port_in_the_domain_when_it_is_expected() -> None:
    text = contributor_message(
        domain="localhost:8000", uri="http://localhost:8000/login", scheme="http"
    )
    assert verify(text, domain="localhost:8000", scheme="http").domain == "localhost:8000"


def test_it_rejects_a_message_for_another_domain() -> None:
    assert_refused("domain mismatch", contributor_message(domain="crowdmint.example.evil"))


def test_it_rejects_the_right_host_on_another_port() -> None:
    text = contributor_message(domain="crowdmint.example:8443")
    assert_refused("domain mismatch", text)


def test_it_rejects_a_scheme_other_than_the_expected_one() -> None:
    assert_refused("scheme mismatch", contributor_message(scheme="http"))


def test_an_explicit_https_scheme_matches_the_default() -> None:
    assert verify(contributor_message(scheme="https")).scheme == "https"


def test_it_rejects_a_uri_on_another_authority() -> None:
    assert_refused("uri mismatch", contributor_message(uri="https://evil.example/login"))


def test_it_checks_the_uri_against_a_prefix_at_a_path_boundary() -> None:
    text = contributor_message(uri="https://app.crowdmint.example/login")
    assert verify(text, uri_prefix="https://app.crowdmint.example").uri.endswith("/login")
    assert verify(text, uri_prefix="https://app.crowdmint.example/").uri.endswith("/login")
    assert_refused("uri mismatch", text, uri_prefix="https://app.crowdmint.example/log")
    evil = contributor_message(uri="https://app.crowdmint.example.evil/login")
    assert_refused("uri mismatch", evil, uri_prefix="https://app.crowdmint.example")


def test_it_rejects_a_message_for_another_chain() -> None:
    assert_refused("chain id mismatch", contributor_message(chain_id=1))


def test_it_rejects_a_nonce_we_did_not_issue() -> None:
    assert_refused("nonce mismatch", contributor_message(nonce="0therN0nce123456"))


def test_it_rejects_an_expired_message() -> None:
    text = contributor_message(expiration_time=NOW - timedelta(seconds=1))
    assert_refused("message expired", text)


def test_a_message_expires_at_its_expiration_time_exactly() -> None:
    assert_refused("message expired", contributor_message(expiration_time=NOW))


def test_it_rejects_a_message_that_is_not_yet_valid() -> None:
    text = contributor_message(not_before=NOW + timedelta(seconds=1))
    assert_refused("message not yet valid", text)


def test_it_tolerates_small_clock_skew_on_issued_at() -> None:
    text = contributor_message(issued_at=NOW + ISSUED_AT_SKEW)
    assert verify(text).issued_at == NOW + ISSUED_AT_SKEW


def test_it_rejects_a_message_issued_in_the_future() -> None:
    text = contributor_message(issued_at=NOW + ISSUED_AT_SKEW + timedelta(seconds=1))
    assert_refused("message issued in the future", text)


def test_it_compares_times_across_utc_offsets() -> None:
    # 13:00+02:00 is 11:00 UTC, an hour before NOW.
    text = contributor_message(
        expiration_time=datetime(2025, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=2)))
    )
    assert_refused("message expired", text)


def test_it_rejects_a_signature_from_another_key() -> None:
    text = contributor_message()
    assert_refused("signature does not match address", text, sign(text, STRANGER))


def test_it_rejects_a_message_tampered_with_after_signing() -> None:
    text = contributor_message()
    signature = sign(text)
    tampered = text.replace("Sign in to Crowdmint.", "Sign in to Crowdmint!")
    assert_refused("signature does not match address", tampered, signature)


def test_it_rejects_a_message_claiming_someone_elses_address() -> None:
    text = contributor_message(address=STRANGER.address)
    assert_refused("signature does not match address", text, sign(text, CONTRIBUTOR))


def test_it_rejects_a_message_outside_the_grammar_before_checking_anything_else() -> None:
    text = contributor_message().replace(CONTRIBUTOR.address, CONTRIBUTOR.address.lower())
    assert_refused("invalid address checksum", text, sign(text))


def test_it_rejects_a_wrong_version_even_when_signed() -> None:
    text = contributor_message().replace("Version: 1", "Version: 2")
    assert_refused("unsupported version", text, sign(text))


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda sig: sig[2:], id="no-0x"),
        pytest.param(lambda sig: sig[:-2], id="64-bytes"),
        pytest.param(lambda sig: sig + "00", id="66-bytes"),
        pytest.param(lambda sig: sig[:-2] + "1d", id="v-29"),
        pytest.param(lambda sig: sig[:-1] + "g", id="not-hex"),
        pytest.param(lambda sig: "0x" + "00" * 64 + "1b", id="zero-r-and-s"),
        pytest.param(lambda sig: "0x" + "ff" * 64 + "1b", id="r-and-s-above-the-group-order"),
        pytest.param(lambda sig: "", id="empty"),
    ],
)
def test_it_rejects_a_malformed_signature(mangle: Callable[[str], str]) -> None:
    text = contributor_message()
    assert_refused("malformed signature", text, mangle(sign(text)))


def test_it_rejects_the_malleated_high_s_twin_of_a_valid_signature() -> None:
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    text = contributor_message()
    raw = bytes.fromhex(sign(text)[2:])
    high_s = (n - int.from_bytes(raw[32:64], "big")).to_bytes(32, "big")
    flipped_v = bytes([55 - raw[64]])  # 27 <-> 28
    twin = "0x" + (raw[:32] + high_s + flipped_v).hex()

    # eth_account itself recovers the same key from the twin; we refuse it.
    assert Account.recover_message(
        encode_defunct(text=text), signature=bytes.fromhex(twin[2:])
    ) == (CONTRIBUTOR.address)
    assert_refused("malformed signature", text, twin)


def test_it_rejects_a_well_formed_signature_no_key_recovers_from() -> None:
    text = contributor_message()
    # r must be the x coordinate of a curve point; x = 5 is not (5**3 + 7 = 132 has no square root
    # mod p), so no public key can be recovered.
    signature = "0x" + (5).to_bytes(32, "big").hex() + (1).to_bytes(32, "big").hex() + "1b"
    assert_refused("invalid signature", text, signature)


def test_it_refuses_a_naive_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify(contributor_message(), now=datetime(2025, 3, 1, 12, 0))


def test_it_defaults_now_to_the_current_time() -> None:
    now = datetime.now(UTC)
    text = contributor_message(issued_at=now, expiration_time=now + timedelta(minutes=5))
    assert verify(text, now=None).address == CONTRIBUTOR.address


# --- properties ---

_ALNUM = string.ascii_letters + string.digits
_STATEMENT_CHARS = _ALNUM + "-._~:/?#[]@!$&'()*+,;= "
_PCHARS = _ALNUM + "-._~!$&'()*+,;=:@"

_labels = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=12)
_hosts = st.one_of(
    st.lists(_labels, min_size=1, max_size=4).map(".".join),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda ip: f"[{ip}]"),
)
_domains = st.builds(
    lambda host, port: host if port is None else f"{host}:{port}",
    _hosts,
    st.none() | st.integers(0, 65535),
)
_segments = st.lists(st.sampled_from([*_PCHARS, "%2F", "%e2"]), max_size=10).map("".join)
_paths = st.lists(_segments, max_size=4).map(lambda segments: "".join("/" + s for s in segments))
_uris = st.one_of(
    st.builds(
        lambda scheme, domain, path: f"{scheme}://{domain}{path}",
        st.sampled_from(["https", "http", "ipfs", "git+ssh"]),
        _domains,
        _paths,
    ),
    st.builds(lambda body: f"urn:{body}", st.text(alphabet=_PCHARS, min_size=1, max_size=30)),
)
_offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
_datetimes = st.one_of(
    st.datetimes(timezones=st.just(UTC)),
    st.datetimes(timezones=_offsets),
)
_addresses = st.binary(min_size=20, max_size=20).map(to_checksum_address)

_messages = st.builds(
    SiweMessage,
    domain=_domains,
    address=_addresses,
    statement=st.none() | st.text(alphabet=_STATEMENT_CHARS, min_size=1, max_size=80),
    uri=_uris,
    version=st.just("1"),
    chain_id=st.integers(0, 2**256 - 1),
    nonce=st.text(alphabet=_ALNUM, min_size=8, max_size=40),
    issued_at=_datetimes,
    expiration_time=st.none() | _datetimes,
    not_before=st.none() | _datetimes,
    request_id=st.none() | st.text(alphabet=_PCHARS, max_size=40),
    resources=st.lists(_uris, max_size=4).map(tuple),
    scheme=st.none() | st.sampled_from(["https", "http", "chrome-extension", "x.y+z"]),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(_messages)
def test_every_message_round_trips_through_its_text(message: SiweMessage) -> None:
    text = message.to_text()

    parsed = parse_message(text)

    assert parsed == message
    assert parsed.to_text() == text
    for value in (parsed.issued_at, parsed.expiration_time, parsed.not_before):
        assert value is None or value.utcoffset() is not None


@settings(max_examples=300)
@given(_messages, st.data())
def test_any_single_character_edit_either_parses_or_raises_siwe_error(
    message: SiweMessage, data: st.DataObject
) -> None:
    text = message.to_text()
    index = data.draw(st.integers(0, len(text) - 1))
    replacement = data.draw(st.characters(codec="utf-8") | st.sampled_from(["\n", " ", ""]))
    mutated = text[:index] + replacement + text[index + 1 :]

    try:
        parse_message(mutated)
    except SiweError as error:
        assert error.reason


@settings(max_examples=200)
@given(st.text(max_size=400))
def test_arbitrary_text_only_ever_raises_siwe_error(text: str) -> None:
    with contextlib.suppress(SiweError):
        parse_message(text)
