"""Checks on contributed content before anything is stored."""

from __future__ import annotations

import hashlib
import io
import unicodedata
import warnings
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, UnidentifiedImageError

from labeling.image_metadata import strip_metadata

ALLOWED_IMAGE_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
# ISO base media file brands of HEIF images (HEIC is what iPhones save by default).
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}


class ContentError(Exception):
    """Contributed content was refused; the message says why and is shown to the contributor."""


@dataclass(frozen=True)
class ValidImage:
    data: bytes
    format: str
    extension: str
    width: int
    height: int
    sha256: str


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _visible(c: str) -> bool:
    """A character that shows: not a space, a control or a format character (U+200B zero width
    space, U+2060 word joiner, U+FEFF, bidirectional marks)."""
    return not c.isspace() and unicodedata.category(c) not in ("Cc", "Cf", "Zs", "Zl", "Zp")


def validate_text(text: object, *, field: str = "text") -> str:
    if not isinstance(text, str):
        raise ContentError(f"{field} must be a string")
    # JSON can carry both, and neither can be stored: PostgreSQL text refuses NUL, and a lone
    # surrogate (\ud800) has no UTF-8 encoding.
    if "\x00" in text:
        raise ContentError(f"{field} contains a NUL character (U+0000)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ContentError(
            f"{field} is not valid Unicode: a lone surrogate at character {exc.start}"
        ) from None
    text = text.strip()
    if not text:
        raise ContentError(f"{field} is empty")
    if not any(_visible(c) for c in text):
        raise ContentError(f"{field} has no visible character (only spaces or format characters)")
    limit = settings.UPLOAD_MAX_TEXT_CHARS
    if len(text) > limit:
        raise ContentError(f"{field} is {len(text)} characters long; the limit is {limit}")
    return text


def validate_image(data: bytes) -> ValidImage:
    """Accept JPEG, PNG or WebP that Pillow opens, verifies and fully decodes within the limits.

    The result holds the image without its metadata (``labeling.image_metadata``: no GPS, camera,
    XMP, IPTC or colour profile, nothing after the end marker; turned upright), and the SHA-256
    of those cleaned bytes, which is what is stored, served and checked for duplicates.
    """
    max_bytes = settings.UPLOAD_MAX_BYTES
    if not data:
        raise ContentError("the file is empty")
    if len(data) > max_bytes:
        raise ContentError(f"the file is {len(data)} bytes; the limit is {max_bytes}")
    max_pixels = settings.UPLOAD_MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                image_format = probe.format or ""
                # A JPEG with a multi-picture (MPF) segment, as phones and cameras write them:
                # its first picture is a plain JPEG, and stripping the metadata keeps just that.
                if image_format == "MPO":
                    image_format = "JPEG"
                width, height = probe.size
                if image_format not in ALLOWED_IMAGE_FORMATS:
                    raise ContentError(
                        f"unsupported image format {image_format or 'unknown'}: use JPEG, PNG or WebP"
                    )
                if width * height > max_pixels:
                    raise ContentError(
                        f"the image has {width * height} pixels; the limit is {max_pixels}"
                    )
                # An item is one picture that every labeler sees alike: an animation shows each
                # a different frame, and the checks (duplicates, pixels) would read only the
                # first, which an APNG may even leave out of what browsers play.
                if probe.format != "MPO" and getattr(probe, "is_animated", False):
                    raise ContentError(
                        f"the image is animated ({probe.n_frames} frames): upload one still picture"
                    )
                probe.verify()
            # verify() leaves the image unusable and skips pixel data for some formats: decode fully.
            with Image.open(io.BytesIO(data)) as full:
                full.load()
            clean = strip_metadata(data, image_format)
            with Image.open(io.BytesIO(clean)) as stored:
                stored.load()
                width, height = stored.size
    except ContentError:
        raise
    except UnidentifiedImageError as exc:
        if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
            # iPhones save HEIC by default; Pillow can't read it, and "not an image" misleads.
            raise ContentError(
                "unsupported image format HEIC/HEIF (a phone's photo format): use JPEG, PNG or WebP"
            ) from exc
        raise ContentError("not an image: Pillow cannot identify the file") from exc
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ContentError("the image has too many pixels") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ContentError(f"the image is damaged or truncated: {exc}") from exc
    return ValidImage(
        data=clean,
        format=image_format,
        extension=ALLOWED_IMAGE_FORMATS[image_format],
        width=width,
        height=height,
        sha256=sha256_hex(clean),
    )
