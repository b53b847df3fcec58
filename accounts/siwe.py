"""Sign-In with Ethereum (EIP-4361): parse, format and verify sign-in messages.

Framework-free on purpose: no Django, no web3. The view layer turns a :class:`SiweError` into a 401
whose body is ``error.reason``.

The grammar follows the ABNF in EIP-4361 (and the RFC 3986 / RFC 3339 rules it points to) strictly.
Signatures are checked for externally owned accounts only (EIP-191 ``personal_sign``); contract
wallets (ERC-1271) would need an RPC call and are not supported here.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys.exceptions import BadSignature
from eth_utils.address import is_checksum_address

__all__ = [
    "ISSUED_AT_SKEW",
    "MAX_MESSAGE_LENGTH",
    "SiweError",
    "SiweMessage",
    "generate_nonce",
    "parse_message",
    "verify_message",
]

# How far in the future `Issued At` may be before we call it a forgery rather than clock drift
# between the wallet's machine and ours.
ISSUED_AT_SKEW = timedelta(minutes=5)

# EIP-4361 leaves term lengths to implementers; a cap keeps a hostile body from costing us much.
MAX_MESSAGE_LENGTH = 16 * 1024

_HEADER_SUFFIX = " wants you to sign in with your Ethereum account:"

# --- RFC 3986 building blocks (ASCII only: `\d` and `str.isalnum` would also accept Unicode). ---
_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCT_ENCODED = r"%[0-9A-Fa-f]{2}"
_PCHAR = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT_ENCODED})"

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_AUTHORITY_RE = re.compile(
    rf"(?:(?P<userinfo>(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT_ENCODED})*)@)?"
    rf"(?P<host>\[[^\[\]]*\]|(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT_ENCODED})*)"
    r"(?::(?P<port>[0-9]*))?"
)
_IPV_FUTURE_RE = re.compile(rf"v[0-9A-Fa-f]+\.[{_UNRESERVED}{_SUB_DELIMS}:]+")
_URI_RE = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+\-.]*):"
    r"(?P<hier>[^?#]*)"
    r"(?:\?(?P<query>[^#]*))?"
    r"(?:#(?P<fragment>.*))?",
    re.DOTALL,
)
_PATH_RE = re.compile(rf"(?:{_PCHAR}|/)*")
_QUERY_OR_FRAGMENT_RE = re.compile(rf"(?:{_PCHAR}|[/?])*")

# --- EIP-4361 terms. ---
_ADDRESS_RE = re.compile(r"0x[0-9A-Fa-f]{40}")
# statement = *( reserved / unreserved / " " ); the empty statement is written as no statement.
_STATEMENT_RE = re.compile(rf"[{_UNRESERVED}:/?#\[\]@{_SUB_DELIMS} ]+")
_NONCE_RE = re.compile(r"[A-Za-z0-9]{8,}")
_CHAIN_ID_RE = re.compile(r"[0-9]{1,78}")  # 78 digits hold any uint256
_REQUEST_ID_RE = re.compile(rf"{_PCHAR}*")

# RFC 3339 section 5.6 `date-time`; "T" and "Z" may be lower case (section 5.6, NOTE).
_DATETIME_RE = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})[Tt]"
    r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]+))?"
    r"(?:(?P<utc>[Zz])|(?P<sign>[+-])(?P<offset_hour>[0-9]{2}):(?P<offset_minute>[0-9]{2}))"
)

_SIGNATURE_RE = re.compile(r"0x[0-9A-Fa-f]{130}")
# secp256k1 group order. Signatures with s > n/2 are the malleated twin of a valid one (EIP-2);
# every mainstream signer emits low-s, so a high-s value means someone rewrote the signature.
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

_NONCE_ALPHABET = string.ascii_letters + string.digits
_NONCE_LENGTH = 22  # 22 * log2(62) ~ 131 bits


class SiweError(Exception):
    """A sign-in message or signature was rejected.

    ``reason`` is short, stable and safe to show the client (it never echoes message content),
    e.g. ``"nonce mismatch"``, ``"message expired"``, ``"domain mismatch"``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SiweMessage:
    """One EIP-4361 message, validated on construction.

    Construction raises :class:`SiweError` when a field breaks the EIP-4361 grammar: a domain that
    is not an RFC 3986 authority with a host, an address that is not EIP-55 checksummed, a statement
    that is empty or holds characters outside the ABNF (no line breaks), a URI or resource that is
    not an RFC 3986 URI, a version other than ``"1"``, a negative chain id, a nonce that is not at
    least 8 ASCII letters or digits, a naive datetime or one whose UTC offset is not whole minutes,
    a request id outside ``*pchar``, or a malformed scheme. So ``to_text()`` always yields text that
    :func:`parse_message` accepts and maps back to an equal message.
    """

    domain: str
    address: str
    statement: str | None
    uri: str
    version: str
    chain_id: int
    nonce: str
    issued_at: datetime
    expiration_time: datetime | None = None
    not_before: datetime | None = None
    request_id: str | None = None
    resources: tuple[str, ...] = ()
    scheme: str | None = None

    def __post_init__(self) -> None:
        if self.scheme is not None and not _fullmatch(_SCHEME_RE, self.scheme):
            raise SiweError("invalid scheme")
        if not _is_domain(self.domain):
            raise SiweError("invalid domain")
        if not _fullmatch(_ADDRESS_RE, self.address):
            raise SiweError("invalid address")
        if not is_checksum_address(self.address):
            raise SiweError("invalid address checksum")
        if self.statement is not None and not _fullmatch(_STATEMENT_RE, self.statement):
            raise SiweError("invalid statement")
        if not _is_uri(self.uri):
            raise SiweError("invalid uri")
        if self.version != "1":
            raise SiweError("unsupported version")
        if (
            not isinstance(self.chain_id, int)
            or isinstance(self.chain_id, bool)
            or self.chain_id < 0
        ):
            raise SiweError("invalid chain id")
        if not _fullmatch(_NONCE_RE, self.nonce):
            raise SiweError("invalid nonce")
        if not _is_rfc3339_representable(self.issued_at):
            raise SiweError("invalid issued-at")
        if self.expiration_time is not None and not _is_rfc3339_representable(self.expiration_time):
            raise SiweError("invalid expiration time")
        if self.not_before is not None and not _is_rfc3339_representable(self.not_before):
            raise SiweError("invalid not-before")
        if self.request_id is not None and not _fullmatch(_REQUEST_ID_RE, self.request_id):
            raise SiweError("invalid request id")
        # Accept any sequence of URIs for convenience, but store a tuple so the message stays
        # hashable and immutable. A bare string is a sequence too, and always a mistake here.
        if isinstance(self.resources, str) or not isinstance(self.resources, Sequence):
            raise SiweError("invalid resource")
        resources = tuple(self.resources)
        if not all(_is_uri(resource) for resource in resources):
            raise SiweError("invalid resource")
        object.__setattr__(self, "resources", resources)

    def to_text(self) -> str:
        """Render the EIP-4361 text that the wallet signs.

        ``parse_message(m.to_text()) == m`` for every message. The reverse,
        ``parse_message(text).to_text() == text``, holds for canonical text; parsing normalises what
        the grammar lets vary: datetimes are written with ``Z`` for UTC (else ``+HH:MM``), no
        fraction when there are no sub-second digits, milliseconds when that is exact, otherwise
        microseconds; chain ids lose leading zeros; an empty ``Resources:`` section is dropped.
        Verification always checks the signature over the original text, never over this.
        """
        origin = f"{self.scheme}://{self.domain}" if self.scheme is not None else self.domain
        lines = [origin + _HEADER_SUFFIX, self.address, ""]
        if self.statement is not None:
            lines.append(self.statement)
        lines.append("")
        lines += [
            f"URI: {self.uri}",
            f"Version: {self.version}",
            f"Chain ID: {self.chain_id}",
            f"Nonce: {self.nonce}",
            f"Issued At: {_format_datetime(self.issued_at)}",
        ]
        if self.expiration_time is not None:
            lines.append(f"Expiration Time: {_format_datetime(self.expiration_time)}")
        if self.not_before is not None:
            lines.append(f"Not Before: {_format_datetime(self.not_before)}")
        if self.request_id is not None:
            lines.append(f"Request ID: {self.request_id}")
        if self.resources:
            lines.append("Resources:")
            lines += [f"- {resource}" for resource in self.resources]
        return "\n".join(lines)


def parse_message(text: str) -> SiweMessage:
    """Parse EIP-4361 text strictly.

    Lines are separated by LF only, and there is no trailing line break. Without a statement the
    address is followed by two blank lines, as the ABNF requires (some client libraries emit one;
    that text is rejected, so our frontend always sends a statement).

    Raises :class:`SiweError` on any deviation from the grammar: ``"message too long"``,
    ``"invalid header"``, ``"missing address"``, ``"missing blank line after address"``,
    ``"missing blank line before URI"``, ``"missing <field>"`` for a required field that is absent
    or out of order, ``"invalid <field>"`` for a malformed value (``"invalid address checksum"``
    for a non-EIP-55 address, ``"unsupported version"`` for a version other than 1), and
    ``"unexpected trailing content"`` for anything after the last recognised field, including
    optional fields out of order.
    """
    if not isinstance(text, str):
        raise SiweError("message must be text")
    if len(text) > MAX_MESSAGE_LENGTH:
        raise SiweError("message too long")
    lines = text.split("\n")
    cursor = _Lines(lines)

    header = cursor.take()
    if header is None or not header.endswith(_HEADER_SUFFIX):
        raise SiweError("invalid header")
    origin = header[: -len(_HEADER_SUFFIX)]
    # An authority cannot contain "/", so the first "://" can only end a scheme.
    scheme: str | None
    if "://" in origin:
        scheme, domain = origin.split("://", 1)
    else:
        scheme, domain = None, origin

    address = cursor.take()
    if address is None:
        raise SiweError("missing address")
    if cursor.take() != "":
        raise SiweError("missing blank line after address")
    statement = cursor.take()
    if statement is None:
        raise SiweError("missing uri")
    if statement == "":
        statement = None
    elif cursor.take() != "":
        raise SiweError("missing blank line before URI")

    uri = cursor.field("URI: ", "uri")
    version = cursor.field("Version: ", "version")
    chain_id_text = cursor.field("Chain ID: ", "chain id")
    if not _fullmatch(_CHAIN_ID_RE, chain_id_text):
        raise SiweError("invalid chain id")
    nonce = cursor.field("Nonce: ", "nonce")
    issued_at = _parse_datetime(cursor.field("Issued At: ", "issued-at"), "issued-at")
    expiration_text = cursor.optional_field("Expiration Time: ")
    expiration_time = (
        None if expiration_text is None else _parse_datetime(expiration_text, "expiration time")
    )
    not_before_text = cursor.optional_field("Not Before: ")
    not_before = None if not_before_text is None else _parse_datetime(not_before_text, "not-before")
    request_id = cursor.optional_field("Request ID: ")
    resources: list[str] = []
    if cursor.peek() == "Resources:":
        cursor.take()
        while (resource := cursor.optional_field("- ")) is not None:
            resources.append(resource)
    if cursor.peek() is not None:
        raise SiweError("unexpected trailing content")

    return SiweMessage(
        domain=domain,
        address=address,
        statement=statement,
        uri=uri,
        version=version,
        chain_id=int(chain_id_text),
        nonce=nonce,
        issued_at=issued_at,
        expiration_time=expiration_time,
        not_before=not_before,
        request_id=request_id,
        resources=tuple(resources),
        scheme=scheme,
    )


def generate_nonce() -> str:
    """Return a fresh nonce: 22 ASCII letters and digits from ``secrets`` (about 131 bits)."""
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(_NONCE_LENGTH))


def verify_message(
    text: str,
    signature: str,
    *,
    domain: str,
    chain_id: int,
    nonce: str,
    uri_prefix: str | None = None,
    now: datetime | None = None,
    scheme: str = "https",
) -> SiweMessage:
    """Check that ``text`` is a sign-in for us, now, signed by the address it names.

    ``domain`` is compared exactly, port included (use the browser's ``location.host``: it omits
    a default port). A message without a scheme counts as ``https`` (EIP-4361), and the message's
    scheme must equal ``scheme``; pass ``scheme="http"`` for a plain-HTTP development server.
    When ``uri_prefix`` is None the URI's authority must equal ``domain``; otherwise the URI must
    start with ``uri_prefix`` at a path boundary (``https://a.example`` does not match
    ``https://a.example.evil``). ``now`` defaults to the current time and must be timezone-aware.
    The signature is ``0x`` plus 65 bytes of hex (r, s, v) from ``personal_sign``; v may be 0/1 or
    27/28.

    Returns the parsed message; its ``address`` is the EIP-55 checksummed signer.

    Raises :class:`SiweError` with one of these reasons: anything :func:`parse_message` raises,
    ``"scheme mismatch"``, ``"domain mismatch"``, ``"uri mismatch"``, ``"chain id mismatch"``,
    ``"nonce mismatch"``, ``"message issued in the future"`` (more than ``ISSUED_AT_SKEW`` ahead),
    ``"message not yet valid"``, ``"message expired"``, ``"malformed signature"`` (not 0x + 65
    bytes of hex, bad v, r or s out of range, high s), ``"invalid signature"`` (no key recovers
    from it) or ``"signature does not match address"``.
    Raises ValueError for a naive ``now``: that is a bug in the caller, not a bad request.
    """
    if now is None:
        now = datetime.now(UTC)
    elif now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")

    message = parse_message(text)

    if (message.scheme or "https") != scheme:
        raise SiweError("scheme mismatch")
    if message.domain != domain:
        raise SiweError("domain mismatch")
    if uri_prefix is None:
        if _uri_authority(message.uri) != domain:
            raise SiweError("uri mismatch")
    elif not _uri_has_prefix(message.uri, uri_prefix):
        raise SiweError("uri mismatch")
    if message.chain_id != chain_id:
        raise SiweError("chain id mismatch")
    # Constant-time, on bytes: compare_digest rejects non-ASCII str, and `nonce` comes from us but
    # could be anything a caller stored.
    if not hmac.compare_digest(message.nonce.encode(), nonce.encode()):
        raise SiweError("nonce mismatch")
    if message.issued_at > now + ISSUED_AT_SKEW:
        raise SiweError("message issued in the future")
    if message.not_before is not None and now < message.not_before:
        raise SiweError("message not yet valid")
    if message.expiration_time is not None and now >= message.expiration_time:
        raise SiweError("message expired")

    signer = recover_signer(text, signature)
    if signer.lower() != message.address.lower():
        raise SiweError("signature does not match address")
    return message


# --- helpers ---------------------------------------------------------------------------------


class _Lines:
    """A cursor over the message's lines, for a parser that reads them strictly in order."""

    def __init__(self, lines: list[str]) -> None:
        self._lines = lines
        self._index = 0

    def peek(self) -> str | None:
        return self._lines[self._index] if self._index < len(self._lines) else None

    def take(self) -> str | None:
        line = self.peek()
        if line is not None:
            self._index += 1
        return line

    def field(self, tag: str, name: str) -> str:
        value = self.optional_field(tag)
        if value is None:
            raise SiweError(f"missing {name}")
        return value

    def optional_field(self, tag: str) -> str | None:
        line = self.peek()
        if line is None or not line.startswith(tag):
            return None
        self._index += 1
        return line[len(tag) :]


def _fullmatch(pattern: re.Pattern[str], value: object) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def _is_domain(value: object) -> bool:
    """An RFC 3986 authority with a non-empty host: what a sign-in request can come from."""
    if not isinstance(value, str):
        return False
    match = _AUTHORITY_RE.fullmatch(value)
    return match is not None and match["host"] != "" and _is_valid_host(match["host"])


def _is_valid_host(host: str) -> bool:
    if not host.startswith("["):
        return True  # a reg-name (IPv4 addresses are reg-names syntactically); the regex checked it
    literal = host[1:-1]
    if _IPV_FUTURE_RE.fullmatch(literal):
        return True
    if "%" in literal:  # zone ids are not part of RFC 3986, though `ipaddress` accepts them
        return False
    try:
        ipaddress.IPv6Address(literal)
    except ValueError:
        return False
    return True


def _split_uri(value: object) -> tuple[str | None, str] | None:
    """Validate an RFC 3986 URI; return (authority or None, hier-part), or None if invalid."""
    if not isinstance(value, str):
        return None
    match = _URI_RE.fullmatch(value)
    if match is None:
        return None
    query, fragment = match["query"], match["fragment"]
    if query is not None and not _QUERY_OR_FRAGMENT_RE.fullmatch(query):
        return None
    if fragment is not None and not _QUERY_OR_FRAGMENT_RE.fullmatch(fragment):
        return None
    hier = match["hier"]
    authority: str | None = None
    path = hier
    if hier.startswith("//"):
        authority, slash, rest = hier[2:].partition("/")
        path = slash + rest
        authority_match = _AUTHORITY_RE.fullmatch(authority)
        if authority_match is None or not _is_valid_host(authority_match["host"]):
            return None
    # Without an authority the path cannot start with "//" (checked above); otherwise any run of
    # pchar and "/" is one of path-abempty, path-absolute, path-rootless or path-empty.
    if not _PATH_RE.fullmatch(path):
        return None
    return authority, hier


def _is_uri(value: object) -> bool:
    return _split_uri(value) is not None


def _uri_authority(uri: str) -> str | None:
    split = _split_uri(uri)
    return None if split is None else split[0]


def _uri_has_prefix(uri: str, prefix: str) -> bool:
    if not uri.startswith(prefix):
        return False
    if len(uri) == len(prefix) or prefix.endswith("/"):
        return True
    return uri[len(prefix)] in "/?#"


def _is_rfc3339_representable(value: object) -> bool:
    if not isinstance(value, datetime):
        return False
    offset = value.utcoffset()
    return offset is not None and offset % timedelta(minutes=1) == timedelta(0)


def _parse_datetime(text: str, name: str) -> datetime:
    match = _DATETIME_RE.fullmatch(text)
    if match is None:
        raise SiweError(f"invalid {name}")
    if match["utc"] is not None:
        tz = UTC
    else:
        offset_hour, offset_minute = int(match["offset_hour"]), int(match["offset_minute"])
        if offset_hour > 23 or offset_minute > 59:
            raise SiweError(f"invalid {name}")
        offset = timedelta(hours=offset_hour, minutes=offset_minute)
        # RFC 3339 reads "-00:00" as "UTC, local offset unknown"; UTC is what matters here.
        tz = timezone(-offset if match["sign"] == "-" else offset) if offset else UTC
    # Sub-microsecond digits are valid RFC 3339 but datetime cannot hold them; truncate.
    fraction = match["fraction"] or ""
    microsecond = int(fraction[:6].ljust(6, "0"))
    try:
        # Range checks (month 13, February 30, hour 24, leap second 60) come from datetime.
        return datetime(
            int(match["year"]),
            int(match["month"]),
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"]),
            microsecond,
            tzinfo=tz,
        )
    except ValueError:
        raise SiweError(f"invalid {name}") from None


def _format_datetime(value: datetime) -> str:
    offset = value.utcoffset()
    assert offset is not None  # guaranteed by SiweMessage.__post_init__
    if offset == timedelta(0):
        zone = "Z"
    else:
        sign = "-" if offset < timedelta(0) else "+"
        hours, minutes = divmod(abs(offset) // timedelta(minutes=1), 60)
        zone = f"{sign}{hours:02d}:{minutes:02d}"
    microsecond = value.microsecond
    if microsecond == 0:
        fraction = ""
    elif microsecond % 1000 == 0:
        fraction = f".{microsecond // 1000:03d}"
    else:
        fraction = f".{microsecond:06d}"
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
        f"T{value.hour:02d}:{value.minute:02d}:{value.second:02d}{fraction}{zone}"
    )


def recover_signer(text: str, signature: str) -> str:
    """The address whose key signed ``text`` (EIP-191 personal_sign), checksummed. Raises
    ``SiweError`` for a malformed, malleable (high-s) or invalid signature."""
    if not _fullmatch(_SIGNATURE_RE, signature):
        raise SiweError("malformed signature")
    raw = bytes.fromhex(signature[2:])
    r = int.from_bytes(raw[:32], "big")
    s = int.from_bytes(raw[32:64], "big")
    v = raw[64]
    if v in (0, 1):  # some signers (hardware wallets, raw secp256k1) report the bare recovery id
        v += 27
    if v not in (27, 28) or not 0 < r < _SECP256K1_N or not 0 < s <= _SECP256K1_N // 2:
        raise SiweError("malformed signature")
    try:
        signer = Account.recover_message(encode_defunct(text=text), signature=raw[:64] + bytes([v]))
        return str(signer)
    except (BadSignature, ValueError):
        raise SiweError("invalid signature") from None
