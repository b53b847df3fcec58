"""Contributions: near copies are refused (a resized or re-encoded image, a text differing only in
case, spacing or punctuation) or flagged when merely similar; a daily quota per contributor; the
project's licence accepted at upload; pairs of texts or images for pairwise projects."""

from __future__ import annotations

import io
import random
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from labeling.models import Item, Project
from labeling.near_duplicates import image_distances, image_hash, text_hash
from moderation.models import Flag
from tests.conftest import Contributor

pytestmark = pytest.mark.django_db


def picture(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    rng = random.Random(seed)
    image = Image.new("RGB", size, (rng.randint(0, 255), 200, 180))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rng.randint(0, size[0]), rng.randint(0, size[1])
        r = rng.randint(10, 60)
        draw.ellipse(
            (x - r, y - r, x + r, y + r), fill=tuple(rng.randint(0, 255) for _ in range(3))
        )
    return image


def encoded(image: Image.Image, fmt: str = "PNG", **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def upload(who: Contributor, project: Project, data: bytes, **extra: Any) -> Any:
    return who.api.post(
        f"/api/v1/projects/{project.pk}/items/",
        {"file": SimpleUploadedFile("p.png", data), "licence_accepted": "true", **extra},
        format="multipart",
    )


def post_text(who: Contributor, project: Project, text: str, **extra: Any) -> Any:
    body = {"text": text, "licence_accepted": True, **extra}
    return who.api.post(f"/api/v1/projects/{project.pk}/items/", body, format="json")


def test_a_resized_or_recompressed_copy_is_refused_naming_the_original(
    contributor: Contributor, second_contributor: Contributor, image_project: Project
) -> None:
    original = picture(1)
    first = upload(contributor, image_project, encoded(original))
    assert first.status_code == 201
    for copy in (
        encoded(original.resize((160, 120))),
        encoded(original, "JPEG", quality=70),
        encoded(original.resize((400, 300)), "WEBP", quality=80),
    ):
        refused = upload(second_contributor, image_project, copy)
        assert refused.status_code == 409, refused.content
        body = refused.json()
        assert body["existing_id"] == first.json()["id"]
        assert "near duplicate (a resized, re-encoded, mirrored or rotated copy)" in body["detail"]
    assert Item.objects.count() == 1


def test_different_pictures_are_far_apart() -> None:
    hashes = [image_hash(encoded(picture(seed))) for seed in range(30)]
    for i, h in enumerate(hashes):
        others = [(j, g) for j, g in enumerate(hashes) if j != i]
        assert image_distances(h, others)[0][0] > 12


def test_a_similar_but_different_image_is_accepted_and_flagged_for_moderators(
    contributor: Contributor, image_project: Project
) -> None:
    base = picture(7)
    original = upload(contributor, image_project, encoded(base))
    assert original.status_code == 201
    base_hash = image_hash(encoded(base))
    # Paint over a growing strip until the picture is 7 to 12 bits away: similar, not a copy.
    for width in range(4, 320, 4):
        edited = base.copy()
        ImageDraw.Draw(edited).rectangle((0, 0, width, 240), fill=(10, 10, 10))
        bits = image_distances(image_hash(encoded(edited)), [(1, base_hash)])[0][0]
        if 6 < bits <= 12:
            break
    else:
        pytest.fail("no strip width lands in the borderline band")
    response = upload(contributor, image_project, encoded(edited))
    assert response.status_code == 201
    flag = Flag.objects.get(kind="near_duplicate")
    assert flag.item_id == response.json()["id"] and flag.user == contributor.user
    assert flag.evidence["similar_item"] == original.json()["id"]


def test_a_text_differing_only_in_case_spacing_or_punctuation_is_refused(
    contributor: Contributor, text_project: Project
) -> None:
    first = post_text(contributor, text_project, "Great value, would buy again!")
    assert first.status_code == 201
    for copy in (
        "great value would buy again",
        "GREAT   VALUE... would buy again?!",
        "Great value - would buy again",
    ):
        refused = post_text(contributor, text_project, copy)
        assert refused.status_code == 409
        assert "case, spacing or punctuation" in refused.json()["detail"]
    assert (
        post_text(contributor, text_project, "Great value, would not buy again").status_code == 201
    )
    assert text_hash("Straße") == text_hash("STRASSE")  # folding is Unicode's


def test_texts_of_only_symbols_or_emoji_are_not_near_copies_of_one_another(
    contributor: Contributor, text_project: Project
) -> None:
    """Each normalises to nothing: by that alone, every one was a "near copy" of the first."""
    for text in ("😀", "🎉", "!!!", "???", "😀😀"):
        assert post_text(contributor, text_project, text).status_code == 201, text
    assert post_text(contributor, text_project, "🎉").status_code == 409  # an exact copy is one


def grey16(seed: int) -> bytes:
    """A smooth 16-bit greyscale photo-like image, as scientific and medical cameras save."""
    rng = random.Random(seed)
    small = Image.new("L", (8, 6))
    small.putdata([rng.randint(0, 255) for _ in range(48)])
    smooth = small.resize((160, 120), Image.Resampling.BICUBIC)
    deep = Image.new("I;16", smooth.size)
    deep.putdata([257 * v for v in smooth.getdata()])
    return encoded(deep)


def test_different_16_bit_images_are_not_near_copies(
    contributor: Contributor, image_project: Project
) -> None:
    """Their values were clipped at 255 before hashing: any light image hashed to all zeros."""
    first, second = grey16(1), grey16(2)
    assert image_distances(image_hash(first), [(1, image_hash(second))])[0][0] > 10
    assert upload(contributor, image_project, first).status_code == 201
    assert upload(contributor, image_project, second).status_code == 201


def test_the_licence_must_be_accepted_and_is_stored_with_the_item(
    contributor: Contributor, text_project: Project
) -> None:
    refused = contributor.api.post(
        f"/api/v1/projects/{text_project.pk}/items/", {"text": "no licence"}, format="json"
    )
    assert refused.status_code == 400
    assert (
        "licence_accepted" in refused.json()["detail"] and "CC-BY-4.0" in refused.json()["detail"]
    )
    created = post_text(contributor, text_project, "with licence")
    assert Item.objects.get(pk=created.json()["id"]).licence == "CC-BY-4.0"


def test_the_daily_upload_quota_answers_429_with_retry_after(
    contributor: Contributor, second_contributor: Contributor, text_project: Project
) -> None:
    Project.objects.filter(pk=text_project.pk).update(daily_upload_quota=2)
    assert post_text(contributor, text_project, "one").status_code == 201
    assert post_text(contributor, text_project, "two").status_code == 201
    third = post_text(contributor, text_project, "three")
    assert third.status_code == 429
    assert 0 < int(third["Retry-After"]) <= 86400
    assert "daily quota" in third.json()["detail"]
    assert post_text(second_contributor, text_project, "three").status_code == 201  # per person


@pytest.fixture
def pairwise_texts(db: None) -> Project:
    return Project.objects.create(
        name="Which answer is better?",
        data_kind="text",
        task="pairwise",
        classes=["a", "b"],
        overlap=3,
    )


def test_a_pairwise_project_takes_two_texts(
    contributor: Contributor, pairwise_texts: Project
) -> None:
    created = post_text(contributor, pairwise_texts, "Paris.", text_b="It is Paris, in France.")
    assert created.status_code == 201
    item = Item.objects.get(pk=created.json()["id"])
    assert (item.text, item.text_b) == ("Paris.", "It is Paris, in France.")
    missing = post_text(contributor, pairwise_texts, "only one")
    assert missing.status_code == 400 and "text_b" in missing.json()["detail"]
    same = post_text(contributor, pairwise_texts, "same", text_b="same")
    assert same.status_code == 400 and "the same" in same.json()["detail"]


def test_a_pairwise_image_project_takes_two_files(contributor: Contributor, db: None) -> None:
    project = Project.objects.create(
        name="Sharper?", data_kind="image", task="pairwise", classes=["a", "b"]
    )
    response = contributor.api.post(
        f"/api/v1/projects/{project.pk}/items/",
        {
            "file": SimpleUploadedFile("a.png", encoded(picture(1))),
            "file_b": SimpleUploadedFile("b.png", encoded(picture(2))),
            "licence_accepted": "true",
        },
        format="multipart",
    )
    assert response.status_code == 201, response.content
    item = Item.objects.get(pk=response.json()["id"])
    assert item.image and item.image_b and item.width_b == 320
    broken = contributor.api.post(
        f"/api/v1/projects/{project.pk}/items/",
        {
            "file": SimpleUploadedFile("a.png", encoded(picture(3))),
            "file_b": SimpleUploadedFile("b.png", b"not an image at all"),
            "licence_accepted": "true",
        },
        format="multipart",
    )
    assert broken.status_code == 400
    assert broken.json()["detail"].startswith("file_b: not an image")


def test_a_pair_of_near_copies_is_refused_in_either_order(
    contributor: Contributor, second_contributor: Contributor, pairwise_texts: Project
) -> None:
    """Pairs had no near-copy check: a re-cased or swapped pair was a new item to label and
    be paid for."""
    first = post_text(
        contributor, pairwise_texts, "The cat sat on the mat.", text_b="A dog barked."
    )
    assert first.status_code == 201
    for one, two in (
        ("the cat sat on the mat", "a dog barked"),
        ("A dog barked.", "The cat sat on the mat."),
        ("A DOG BARKED!", "THE CAT SAT ON THE MAT"),
    ):
        refused = post_text(second_contributor, pairwise_texts, one, text_b=two)
        assert refused.status_code == 409, (one, two)
        assert refused.json()["existing_id"] == first.json()["id"]
    other = post_text(contributor, pairwise_texts, "The cat sat on the mat.", text_b="A dog sat.")
    assert other.status_code == 201
    # One side's text is not the pair's: a text alone and the pair never match.
    assert text_hash("The cat sat on the mat.") != Item.objects.get(pk=other.json()["id"]).near_hash


def upload_pair(who: Contributor, project: Project, a: bytes, b: bytes) -> Any:
    return who.api.post(
        f"/api/v1/projects/{project.pk}/items/",
        {
            "file": SimpleUploadedFile("a.png", a),
            "file_b": SimpleUploadedFile("b.png", b),
            "licence_accepted": "true",
        },
        format="multipart",
    )


def test_a_pair_of_resized_images_is_refused_in_either_order(
    contributor: Contributor, second_contributor: Contributor, db: None
) -> None:
    project = Project.objects.create(
        name="Sharper?", data_kind="image", task="pairwise", classes=["a", "b"]
    )
    a, b = picture(1), picture(2)
    first = upload_pair(contributor, project, encoded(a), encoded(b))
    assert first.status_code == 201
    small_a, small_b = encoded(a.resize((160, 120))), encoded(b.resize((160, 120)), "JPEG")
    for one, two in ((small_a, small_b), (small_b, small_a)):
        refused = upload_pair(second_contributor, project, one, two)
        assert refused.status_code == 409
        assert refused.json()["existing_id"] == first.json()["id"]
    # One side new: a different comparison.
    assert upload_pair(contributor, project, encoded(a), encoded(picture(3))).status_code == 201


@pytest.mark.parametrize(
    "turn",
    [
        Image.Transpose.FLIP_LEFT_RIGHT,
        Image.Transpose.FLIP_TOP_BOTTOM,
        Image.Transpose.ROTATE_90,
        Image.Transpose.ROTATE_180,
        Image.Transpose.ROTATE_270,
    ],
)
def test_a_mirrored_or_rotated_copy_is_refused(
    contributor: Contributor, image_project: Project, turn: Image.Transpose
) -> None:
    """A mirrored copy passed the dHash check as a new picture (a resized one was caught)."""
    original = upload(contributor, image_project, encoded(picture(5)))
    assert original.status_code == 201
    refused = upload(contributor, image_project, encoded(picture(5).transpose(turn), "JPEG"))
    assert refused.status_code == 409
    assert "mirrored or rotated" in refused.json()["detail"]
    assert refused.json()["existing_id"] == original.json()["id"]


def test_turned_hashes_of_different_pictures_stay_far_apart() -> None:
    from labeling.near_duplicates import image_hashes_turned

    hashes = [(seed, image_hash(encoded(picture(seed)))) for seed in range(30)]
    for seed in range(30, 40):
        data = encoded(picture(seed))
        closest = image_distances(image_hash(data), hashes, image_hashes_turned(data))
        assert closest[0][0] > 12


def _text_hash_reference(text: str) -> str:
    """The normalisation as first written, one character at a time (the fast table must agree)."""
    import hashlib
    import re
    import unicodedata

    folded = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(
        " " if unicodedata.category(c)[0] in "PSZ" else c for c in folded if c.isprintable()
    )
    normalised = re.sub(r"\s+", " ", kept).strip() or "\x00" + text
    return "t" + hashlib.sha256(normalised.encode("utf-8")).hexdigest()


@given(st.text(max_size=60))
@settings(max_examples=300, deadline=None)
def test_the_fast_text_normalisation_agrees_with_the_reference(text: str) -> None:
    assert text_hash(text) == _text_hash_reference(text)


def test_flat_or_graded_images_of_different_colours_are_not_copies(
    contributor: Contributor, image_project: Project
) -> None:
    """dHash reads brightness edges only: every flat image hashed alike, so a red square refused
    a blue one; and with mirrored copies checked, so did a gradient and a mirrored one of another
    colour. Their mean colours tell them apart; the same picture, re-encoded, stays a copy."""
    red = Image.new("RGB", (60, 40), (200, 30, 30))
    blue = Image.new("RGB", (60, 40), (30, 30, 200))
    ramp = Image.linear_gradient("L").resize((64, 48))
    warm = Image.merge("RGB", (ramp, ramp.point(lambda v: v // 2), Image.new("L", (64, 48), 0)))
    cold = Image.merge("RGB", (Image.new("L", (64, 48), 0), ramp, ramp)).transpose(
        Image.Transpose.ROTATE_90
    )
    for picture_ in (red, blue, warm, cold):
        assert upload(contributor, image_project, encoded(picture_)).status_code == 201
    assert not Flag.objects.exists()  # nor "similar": their hashes say next to nothing
    again = upload(contributor, image_project, encoded(blue.resize((30, 20)), "JPEG"))
    assert again.status_code == 409


def test_a_recoloured_copy_is_not_refused_but_shown_to_moderators(
    contributor: Contributor, image_project: Project
) -> None:
    original = picture(11)
    assert upload(contributor, image_project, encoded(original)).status_code == 201
    tinted = Image.blend(original, Image.new("RGB", original.size, (0, 0, 255)), 0.35)
    response = upload(contributor, image_project, encoded(tinted))
    assert response.status_code == 201
    assert Flag.objects.get(kind="near_duplicate").item_id == response.json()["id"]
