"""Uploaded images lose their metadata before they are stored: what comes out has no GPS, camera,
XMP, IPTC, comment, colour profile or trailing bytes, and is upright."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from labeling.image_metadata import strip_metadata
from labeling.models import Item, Project
from tests.conftest import Contributor
from tests.labeling.test_contributions import upload

pytestmark = pytest.mark.django_db

SECRETS = [b"Canon", b"EOS 5D", b"SERIAL-1234", b"52.3700", b"my secret note", b"GPSdata"]


def exif_with_gps(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    exif[0x0110] = "EOS 5D"  # Model
    exif[0xA431] = "SERIAL-1234"  # BodySerialNumber
    exif[0x0112] = orientation
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (52.0, 22.0, 12.0)
    gps[0x1B] = "52.3700 GPSdata"  # GPSProcessingMethod: text a reader would recognise
    return exif


def photo(fmt: str, *, orientation: int = 1, size: tuple[int, int] = (40, 20)) -> bytes:
    """A picture whose left half is red and right half blue, carrying every kind of metadata."""
    image = Image.new("RGB", size, (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, size[0] // 2, size[1]))
    buffer = io.BytesIO()
    extra: dict[str, object] = {
        "exif": exif_with_gps(orientation),
        "icc_profile": b"\x00" * 128 + b"device: my secret note",
        "xmp": b"<x:xmpmeta><rdf:Description GPSLatitude='52.3700'/></x:xmpmeta>",
    }
    if fmt == "JPEG":
        extra.update(comment=b"my secret note", quality=95)
    if fmt == "WEBP":
        extra.update(lossless=True)
    image.save(buffer, fmt, **extra)
    return buffer.getvalue() + b"trailing: my secret note SERIAL-1234"


def assert_clean(data: bytes) -> None:
    for secret in SECRETS:
        assert secret not in data, secret
    with Image.open(io.BytesIO(data)) as image:
        assert not image.getexif()
        assert "icc_profile" not in image.info and "xmp" not in image.info
        assert "comment" not in image.info and "exif" not in image.info


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_an_image_with_gps_goes_in_and_what_comes_out_has_none(
    contributor: Contributor,
    second_contributor: Contributor,
    image_project: Project,
    media_root: Path,
    fmt: str,
) -> None:
    original = photo(fmt)
    assert b"SERIAL-1234" in original and b"Canon" in original
    response = upload(contributor, image_project, original, name=f"p.{fmt.lower()}")
    assert response.status_code == 201, response.content  # type: ignore[attr-defined]
    item = Item.objects.get(pk=response.json()["id"])  # type: ignore[attr-defined]
    [stored] = [p for p in media_root.rglob("*") if p.is_file()]
    assert_clean(stored.read_bytes())
    served = contributor.api.get(f"/api/v1/items/{item.pk}/content")
    assert served.status_code == 200
    data = b"".join(served.streaming_content)
    assert data == stored.read_bytes()
    assert_clean(data)
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (40, 20)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_lossless_formats_keep_every_pixel(fmt: str) -> None:
    original = photo(fmt)
    clean = strip_metadata(original, fmt)
    with Image.open(io.BytesIO(original)) as before, Image.open(io.BytesIO(clean)) as after:
        assert before.tobytes() == after.tobytes()


def test_a_jpeg_keeps_its_encoded_pixels_byte_for_byte() -> None:
    original = photo("JPEG")
    clean = strip_metadata(original, "JPEG")
    with Image.open(io.BytesIO(original)) as before, Image.open(io.BytesIO(clean)) as after:
        assert before.tobytes() == after.tobytes()  # no re-encoding: the same decoded pixels
    assert len(clean) < len(original)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_a_rotated_photo_is_turned_upright_before_its_orientation_tag_goes(
    contributor: Contributor, image_project: Project, fmt: str
) -> None:
    # Orientation 6: the camera was turned; viewers rotate 90 degrees clockwise to show it.
    original = photo(fmt, orientation=6)
    response = upload(contributor, image_project, original, name=f"r.{fmt.lower()}")
    assert response.status_code == 201, response.content  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert (body["width"], body["height"]) == (20, 40)
    data = b"".join(contributor.api.get(f"/api/v1/items/{body['id']}/content").streaming_content)
    assert_clean(data)
    with Image.open(io.BytesIO(data)) as image:
        rgb = image.convert("RGB")
        assert rgb.size == (20, 40)
        top, bottom = rgb.getpixel((10, 5)), rgb.getpixel((10, 35))
    assert (
        top[0] > 200 and top[2] < 60
    )  # red on top after the clockwise turn  # type: ignore[index]
    assert bottom[2] > 200 and bottom[0] < 60  # type: ignore[index]


def test_copies_that_differ_only_in_metadata_are_duplicates(
    contributor: Contributor, image_project: Project
) -> None:
    first = upload(contributor, image_project, photo("PNG"))
    assert first.status_code == 201  # type: ignore[attr-defined]
    retagged = photo("PNG")[: -len(b"trailing: my secret note SERIAL-1234")] + b"other trailer"
    second = upload(contributor, image_project, retagged)
    assert second.status_code == 409  # type: ignore[attr-defined]
    assert second.json()["existing_id"] == first.json()["id"]  # type: ignore[attr-defined]


def test_a_jpeg_thumbnail_in_jfif_and_a_second_image_after_the_end_are_dropped() -> None:
    base = photo("JPEG")
    thumbnail = b"\xaa" * 12  # a 2 x 2 RGB thumbnail
    jfif = b"JFIF\x00\x01\x02\x00\x00\x01\x00\x01\x02\x02" + thumbnail
    app0 = b"\xff\xe0" + struct.pack(">H", len(jfif) + 2) + jfif
    with_thumbnail = base[:2] + app0 + base[2:] + photo("JPEG")  # an MPF-style second picture
    clean = strip_metadata(with_thumbnail, "JPEG")
    assert thumbnail not in clean
    assert clean.count(b"\xff\xd8") == 1 and clean.endswith(b"\xff\xd9")
    assert_clean(clean)


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from(["JPEG", "PNG", "WEBP"]),
    st.integers(1, 8),
    st.tuples(st.integers(1, 64), st.integers(1, 64)),
)
def test_any_orientation_and_size_comes_out_clean_and_decodable(
    fmt: str, orientation: int, size: tuple[int, int]
) -> None:
    clean = strip_metadata(photo(fmt, orientation=orientation, size=size), fmt)
    assert_clean(clean)
    turned = orientation in (5, 6, 7, 8)
    with Image.open(io.BytesIO(clean)) as image:
        image.load()
        assert image.size == (size[::-1] if turned else size)
