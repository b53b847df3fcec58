"""Contributing items: validation, limits and duplicates; nothing is stored for a refused upload."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from labeling.models import Item, Project
from tests.conftest import Contributor, image_bytes

pytestmark = pytest.mark.django_db


def upload(contributor: Contributor, project: Project, data: bytes, name: str = "x.png") -> object:
    return contributor.api.post(
        f"/api/v1/projects/{project.pk}/items/",
        {"file": SimpleUploadedFile(name, data), "licence_accepted": "true"},
        format="multipart",
    )


def stored_files(media_root: Path) -> list[Path]:
    return [p for p in media_root.rglob("*") if p.is_file()] if media_root.exists() else []


def test_a_contributor_adds_a_text_item(contributor: Contributor, text_project: Project) -> None:
    response = contributor.api.post(
        f"/api/v1/projects/{text_project.pk}/items/",
        {"text": "  Great value.  ", "licence_accepted": True},
        format="json",
    )
    assert response.status_code == 201
    item = Item.objects.get(pk=response.json()["id"])
    assert item.text == "Great value."
    assert item.contributor == contributor.user
    assert item.required_labels == 3


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_a_contributor_uploads_an_image(
    contributor: Contributor, image_project: Project, media_root: Path, fmt: str
) -> None:
    response = upload(contributor, image_project, image_bytes(fmt))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["width"] == 32 and body["height"] == 24
    item = Item.objects.get(pk=body["id"])
    assert item.image_format == fmt
    assert len(stored_files(media_root)) == 1
    content = contributor.api.get(f"/api/v1/items/{item.pk}/content")
    assert content.status_code == 200
    assert b"".join(content.streaming_content) == image_bytes(fmt)


def test_a_phones_multi_picture_jpeg_is_stored_as_its_first_picture(
    contributor: Contributor, image_project: Project
) -> None:
    """Phones and cameras write JPEGs with an MPF segment and a second picture after the first;
    Pillow calls those MPO, and they were refused as an unsupported format."""
    import io

    from PIL import Image

    main = Image.new("RGB", (80, 60), (200, 30, 30))
    preview = Image.new("RGB", (40, 30), (30, 30, 200))
    out = io.BytesIO()
    main.save(out, "MPO", save_all=True, append_images=[preview])
    assert Image.open(io.BytesIO(out.getvalue())).format == "MPO"
    response = upload(contributor, image_project, out.getvalue(), name="photo.jpg")
    assert response.status_code == 201, response.content
    item = Item.objects.get(pk=response.json()["id"])
    assert (item.image_format, item.width, item.height) == ("JPEG", 80, 60)
    content = contributor.api.get(f"/api/v1/items/{item.pk}/content")
    with Image.open(io.BytesIO(b"".join(content.streaming_content))) as stored:
        assert stored.format == "JPEG" and stored.size == (80, 60)


def test_an_exact_duplicate_image_gets_409_naming_the_existing_item(
    contributor: Contributor,
    second_contributor: Contributor,
    image_project: Project,
    media_root: Path,
) -> None:
    first = upload(contributor, image_project, image_bytes())
    again = upload(second_contributor, image_project, image_bytes(), name="other-name.png")
    assert again.status_code == 409
    assert again.json()["existing_id"] == first.json()["id"]
    assert str(first.json()["id"]) in again.json()["detail"]
    assert Item.objects.count() == 1
    assert len(stored_files(media_root)) == 1


def test_a_duplicate_text_gets_409(contributor: Contributor, text_project: Project) -> None:
    url = f"/api/v1/projects/{text_project.pk}/items/"
    first = contributor.api.post(url, {"text": "same", "licence_accepted": True}, format="json")
    again = contributor.api.post(url, {"text": "same", "licence_accepted": True}, format="json")
    first = first.json()
    assert again.status_code == 409 and again.json()["existing_id"] == first["id"]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ('{"text": "a\\u0000b", "licence_accepted": true}', "NUL character"),
        ('{"text": "a\\ud800b", "licence_accepted": true}', "lone surrogate at character 1"),
        ('{"text": "   ", "licence_accepted": true}', "text is empty"),
        ('{"text": "\\u200b", "licence_accepted": true}', "no visible character"),
        ('{"text": " \\u2060\\ufeff\\u202e ", "licence_accepted": true}', "no visible character"),
    ],
    ids=["nul", "lone-surrogate", "blank", "zero-width-space", "format-characters"],
)
def test_text_that_cannot_be_stored_gets_400_with_the_reason(
    contributor: Contributor, text_project: Project, raw: str, reason: str
) -> None:
    response = contributor.api.generic(
        "POST",
        f"/api/v1/projects/{text_project.pk}/items/",
        raw,
        content_type="application/json",
    )
    assert response.status_code == 400
    assert reason in response.json()["detail"]
    assert Item.objects.count() == 0


@pytest.mark.parametrize(
    "body", [["text"], "text", 7, {"txt": "typo", "licence_accepted": True}], ids=repr
)
def test_a_body_that_is_not_a_text_object_gets_400(
    contributor: Contributor, text_project: Project, body: object
) -> None:
    response = contributor.api.post(
        f"/api/v1/projects/{text_project.pk}/items/", body, format="json"
    )
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "send JSON" in detail or "licence_accepted" in detail
    assert Item.objects.count() == 0


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"%PDF-1.4 not an image at all", "not an image"),
        (image_bytes("GIF"), "unsupported image format GIF"),
        (image_bytes("PNG")[:60], "damaged or truncated"),
        (b"", "empty"),
    ],
    ids=["non-image", "gif", "truncated", "empty"],
)
def test_a_bad_file_gets_400_with_the_reason_and_nothing_is_stored(
    contributor: Contributor, image_project: Project, media_root: Path, data: bytes, reason: str
) -> None:
    response = upload(contributor, image_project, data)
    assert response.status_code == 400
    assert reason in response.json()["detail"]
    assert Item.objects.count() == 0
    assert stored_files(media_root) == []


def _animation(fmt: str, *, default_image: bool = False) -> bytes:
    import io

    from PIL import Image

    frames = [Image.new("RGB", (40, 30), (60 * i, 90, 30)) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(
        out, fmt, save_all=True, append_images=frames[1:], duration=100, default_image=default_image
    )
    return out.getvalue()


def _heic() -> bytes:
    """The start of an iPhone photo: an ISO base media file whose brand is ``heic``."""
    return (24).to_bytes(4, "big") + b"ftypheic" + bytes(4) + b"mif1heic" + bytes(64)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_animation("PNG"), "animated (3 frames)"),
        # The default image (IDAT) left out of the animation: browsers play the other frames,
        # while the duplicate check would have read only that one.
        (_animation("PNG", default_image=True), "animated"),
        (_animation("WEBP"), "animated (3 frames)"),
        (_heic(), "unsupported image format HEIC/HEIF"),
    ],
    ids=["apng", "apng-hidden-default-image", "animated-webp", "heic"],
)
def test_an_animation_or_a_phones_heic_photo_gets_400_saying_so(
    contributor: Contributor, image_project: Project, media_root: Path, data: bytes, reason: str
) -> None:
    response = upload(contributor, image_project, data)
    assert response.status_code == 400, response.content
    assert reason in response.json()["detail"]
    assert Item.objects.count() == 0
    assert stored_files(media_root) == []


def test_a_one_frame_apng_is_stored_as_a_plain_png(
    contributor: Contributor, image_project: Project
) -> None:
    import io
    import struct
    import zlib

    from PIL import Image

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 90, 30)).save(out, "PNG")
    plain = out.getvalue()
    ihdr_end = 8 + 25
    # acTL: one frame, played once; fcTL before IDAT: the default image is that frame.
    animation = chunk(b"acTL", struct.pack(">II", 1, 0)) + chunk(
        b"fcTL", struct.pack(">IIIIIHHBB", 0, 40, 30, 0, 0, 1, 10, 0, 0)
    )
    apng = plain[:ihdr_end] + animation + plain[ihdr_end:]
    with Image.open(io.BytesIO(apng)) as image:
        assert image.get_format_mimetype() == "image/apng" and not image.is_animated
    response = upload(contributor, image_project, apng)
    assert response.status_code == 201, response.content
    content = contributor.api.get(f"/api/v1/items/{response.json()['id']}/content")
    stored = b"".join(content.streaming_content)
    assert b"acTL" not in stored and b"fcTL" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert image.size == (40, 30) and image.getpixel((0, 0)) == (200, 90, 30)


def test_size_and_pixel_limits_are_enforced(
    contributor: Contributor, image_project: Project, settings: object
) -> None:
    settings.UPLOAD_MAX_PIXELS = 100  # type: ignore[attr-defined]
    response = upload(contributor, image_project, image_bytes(size=(20, 20)))
    assert response.status_code == 400 and "pixels" in response.json()["detail"]
    settings.UPLOAD_MAX_PIXELS = 10**7  # type: ignore[attr-defined]
    settings.UPLOAD_MAX_BYTES = 50  # type: ignore[attr-defined]
    response = upload(contributor, image_project, image_bytes())
    assert response.status_code == 400 and "limit" in response.json()["detail"]
    assert Item.objects.count() == 0


def test_the_wrong_kind_of_content_for_the_project_gets_400(
    contributor: Contributor, text_project: Project, image_project: Project
) -> None:
    assert upload(contributor, text_project, image_bytes()).status_code == 400
    response = contributor.api.post(
        f"/api/v1/projects/{image_project.pk}/items/",
        {"text": "hi", "licence_accepted": True},
        format="json",
    )
    assert response.status_code == 400 and "images" in response.json()["detail"]
    empty = contributor.api.post(f"/api/v1/projects/{text_project.pk}/items/", {}, format="json")
    assert empty.status_code == 400


def test_a_closed_or_unknown_project_gets_404(
    contributor: Contributor, text_project: Project
) -> None:
    text_project.is_open = False
    text_project.save(update_fields=["is_open"])
    assert (
        contributor.api.post(
            f"/api/v1/projects/{text_project.pk}/items/",
            {"text": "x", "licence_accepted": True},
            format="json",
        ).status_code
        == 404
    )
    assert (
        contributor.api.post(
            "/api/v1/projects/999/items/", {"text": "x", "licence_accepted": True}, format="json"
        ).status_code
        == 404
    )


def test_the_project_list_shows_open_projects(
    text_project: Project, image_project: Project
) -> None:
    from rest_framework.test import APIClient

    body = APIClient().get("/api/v1/projects/").json()
    assert [p["id"] for p in body] == [text_project.pk, image_project.pk]
    assert body[0] | {"description": ""} == {
        "id": text_project.pk,
        "name": "Sentiment",
        "description": "",
        "data_kind": "text",
        "task": "classify",
        "question": "",
        "guidelines": "",
        "classes": ["positive", "negative"],
        "agreement_threshold": 0.5,
        "spans_may_overlap": False,
        "overlap": 3,
        "max_labels": 5,
        "consensus_method": "majority_vote",
        "acceptance_threshold": 0.95,
        "reward_per_label": "10",
        "reward_per_item": "25",
        "reward_per_label_display": "0.00000000000000001 CMT",
        "reward_per_item_display": "0.000000000000000025 CMT",
        "licence": "CC-BY-4.0",
    }
