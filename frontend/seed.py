"""Demo data, made through the same services the platform uses."""

from __future__ import annotations

import io
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw, ImageFilter

from accounts.demo import demo_accounts
from accounts.groups import admin_groups_ensure
from accounts.models import User
from accounts.services import api_key_issue, user_get_or_create_for_wallet
from labeling.models import Item, Project
from labeling.services import annotation_create, item_create_image, item_create_text, project_refit
from market.services import grant_give

TEXTS = [
    ("I love how fast this phone charges, best purchase this year.", "positive"),
    ("The battery died after two days and support never answered.", "negative"),
    ("Delivery was on time and the box was intact.", "positive"),
    ("Terrible fit, the sleeves are far too short.", "negative"),
    ("Works exactly as described, would buy again.", "positive"),
    ("It stopped working after a week. Waste of money.", "negative"),
    ("The colours are gorgeous in daylight.", "positive"),
    ("Instructions were missing and two screws were loose.", "negative"),
    ("Customer service replaced it the next day, impressed.", "positive"),
    ("Loud, slow and it smells of burnt plastic.", "negative"),
    ("Comfortable enough for a long flight.", "positive"),
    ("The app crashes every time I open settings.", "negative"),
]
COLOURS = {"red": (220, 40, 40), "green": (40, 170, 70), "blue": (40, 90, 220)}


TAGGED_TEXTS = [
    ("Fresh pasta with basil, tomatoes and a glass of red wine.", ["food", "drink"]),
    ("The band played until midnight in the park.", ["music", "outdoors"]),
    ("Grilled fish on the beach at sunset.", ["food", "outdoors"]),
    ("A quiet jazz bar with excellent cocktails.", ["music", "drink"]),
    ("Hiking up the ridge before breakfast.", ["outdoors"]),
    ("Espresso and a croissant on the terrace.", ["food", "drink", "outdoors"]),
]
ENTITY_TEXTS = [
    (
        "Ada Lovelace worked with Charles Babbage in London.",
        [(0, 12, "PER"), (25, 40, "PER"), (44, 50, "LOC")],
    ),
    ("Marie Curie moved from Warsaw to Paris.", [(0, 11, "PER"), (23, 29, "LOC"), (33, 38, "LOC")]),
    ("Alan Turing was born in Maida Vale.", [(0, 11, "PER"), (24, 34, "LOC")]),
    ("Grace Hopper served in the US Navy.", [(0, 12, "PER")]),
]
ANSWER_PAIRS = [
    (
        "What is the capital of France?",
        "Paris.",
        "Paris is the capital of France; it lies on the Seine.",
        "b",
    ),
    ("How many legs does a spider have?", "Eight.", "Six, like other insects.", "a"),
    (
        "Is water wet?",
        "Water makes other things wet; whether water itself is wet depends on the definition.",
        "Yes.",
        "a",
    ),
    ("Name a prime number.", "Seven.", "Nine.", "a"),
]


@dataclass(frozen=True)
class DemoCast:
    moderator_password: str
    buyer_key: str  # a grant on every dataset
    text_buyer_key: str  # a grant on the text dataset only
    contributors: list[User]
    text_project: Project
    image_project: Project
    task_projects: list[Project]


def _png(colour: tuple[int, int, int], seed: int) -> bytes:
    rng = random.Random(seed)
    image = Image.new("RGB", (160, 120), (245, 245, 240))
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        x, y, r = rng.randint(20, 140), rng.randint(20, 100), rng.randint(12, 30)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def seed_demo(*, moderator_password: str) -> DemoCast:
    moderator = User.objects.create_superuser(
        "moderator", "moderator@example.org", moderator_password
    )
    moderator.role = User.Role.MODERATOR
    moderator.save(update_fields=["role"])
    admin_groups_ensure()  # "moderators" and "payout managers", for staff the superuser adds
    buyer = User.objects.create_user("buyer", "buyer@example.org", role=User.Role.BUYER)
    buyer_key = api_key_issue(user=buyer, name="demo key")
    text_buyer = User.objects.create_user(
        "text-buyer", "text-buyer@example.org", role=User.Role.BUYER
    )
    text_buyer_key = api_key_issue(user=text_buyer, name="demo key (text dataset only)")
    contributors = [user_get_or_create_for_wallet(address=a.address) for a in demo_accounts()]

    text_project = Project.objects.create(
        name="Product review sentiment",
        description="Is this customer review positive or negative?",
        data_kind=Project.DataKind.TEXT,
        classes=["positive", "negative"],
        overlap=3,
        reward_per_label=10**18,
        reward_per_item=2 * 10**18,
        licence="CC-BY-4.0",
        price=50 * 10**18,
    )
    image_project = Project.objects.create(
        name="Dominant colour",
        description="Which colour are the shapes in this picture?",
        data_kind=Project.DataKind.IMAGE,
        classes=list(COLOURS),
        overlap=3,
        reward_per_label=10**18,
        reward_per_item=2 * 10**18,
        licence="CC0-1.0",
        price=80 * 10**18,
    )
    text_items = [
        item_create_text(project=text_project, contributor=contributors[i % 4], text=text)
        for i, (text, _) in enumerate(TEXTS)
    ]
    image_items: list[tuple[Item, str]] = []
    for i in range(9):
        name = list(COLOURS)[i % 3]
        item = item_create_image(
            project=image_project, contributor=contributors[i % 4], data=_png(COLOURS[name], i)
        )
        image_items.append((item, name))

    # Label the first half of each project with the three contributors who didn't upload it; one
    # labeler disagrees now and then, as crowds do.
    for index, (item, truth) in enumerate(
        [*zip(text_items, [t for _, t in TEXTS], strict=True), *image_items][::2]
    ):
        project = item.project
        labelers = [c for c in contributors if c.pk != item.contributor_id][:3]
        for n, labeler in enumerate(labelers):
            label = truth
            if n == 2 and index % 3 == 0:
                label = next(c for c in project.classes if c != truth)
            item.refresh_from_db()
            annotation_create(item=item, annotator=labeler, label=label, leased_only=False)
    # Fit each project's model once, as Celery beat would: skills for the profiles, and the items
    # that were left unsure by the default prior are re-decided.
    for project in (text_project, image_project):
        project_refit(project_id=project.pk)
    task_projects = _seed_other_tasks(contributors)
    # Access grants, as a moderator gives them in admin (audited).
    for project in (text_project, image_project, *task_projects):
        grant_give(project=project, buyer=buyer, moderator=moderator, note="demo")
    grant_give(project=text_project, buyer=text_buyer, moderator=moderator, note="demo")
    return DemoCast(
        moderator_password=moderator_password,
        buyer_key=buyer_key,
        text_buyer_key=text_buyer_key,
        contributors=contributors,
        text_project=text_project,
        image_project=image_project,
        task_projects=task_projects,
    )


def _answer_half(items: Sequence[tuple[Item, Mapping[str, Any]]], contributors: list[User]) -> None:
    """The first half of the items answered by three contributors each (their true answer), so
    the demo shows decided and paid items of every task beside open ones."""
    for item, body in items[: (len(items) + 1) // 2]:
        labelers = [c for c in contributors if c.pk != item.contributor_id][:3]
        for labeler in labelers:
            item.refresh_from_db()
            if item.status == Item.Status.OPEN:
                annotation_create(item=item, annotator=labeler, body=body, leased_only=False)


def _scene(seed: int, boxes: list[tuple[int, int, int, int, str]]) -> bytes:
    """A street scene: grey road, red cars and blue people as rectangles."""
    image = Image.new("RGB", (240, 160), (200, 205, 210))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 110, 240, 160), fill=(90, 90, 95))
    colours = {"car": (200, 40, 40), "person": (40, 60, 200)}
    rng = random.Random(seed)
    for _ in range(20):  # texture, so every picture differs
        x, y = rng.randint(0, 239), rng.randint(0, 100)
        draw.point((x, y), fill=(rng.randint(150, 255),) * 3)
    for x, y, w, h, label in boxes:
        draw.rectangle((x, y, x + w, y + h), fill=colours[label])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _seed_other_tasks(contributors: list[User]) -> list[Project]:
    """One project of every other task, text and image where both apply."""
    uploader = contributors[0]
    rates = {"reward_per_label": 10**18, "reward_per_item": 2 * 10**18, "licence": "CC-BY-4.0"}
    tags = Project.objects.create(
        name="Topics of a sentence",
        description="Tick every topic the sentence is about.",
        question="Which topics does this sentence touch on?",
        guidelines="Tick all that apply; none is a valid answer.",
        data_kind=Project.DataKind.TEXT,
        task=Project.Task.MULTILABEL,
        classes=["food", "drink", "music", "outdoors"],
        **rates,
    )
    tag_items = [
        (item_create_text(project=tags, contributor=uploader, text=text), {"labels": labels})
        for text, labels in TAGGED_TEXTS
    ]
    _answer_half(tag_items, contributors)

    colour_tags = Project.objects.create(
        name="Colours in a picture",
        description="Tick every colour the shapes have.",
        question="Which colours do you see in the shapes?",
        data_kind=Project.DataKind.IMAGE,
        task=Project.Task.MULTILABEL,
        classes=list(COLOURS),
        **rates,
    )
    colour_items = []
    for i, colours in enumerate([["red"], ["green", "blue"], ["red", "blue"], ["green"]]):
        image = Image.new("RGB", (160, 120), (245, 245, 240))
        draw = ImageDraw.Draw(image)
        rng = random.Random(50 + i)
        for name in colours:
            for _ in range(2):
                x, y, r = rng.randint(15, 145), rng.randint(15, 105), rng.randint(10, 28)
                draw.ellipse((x - r, y - r, x + r, y + r), fill=COLOURS[name])
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        item = item_create_image(project=colour_tags, contributor=uploader, data=buffer.getvalue())
        colour_items.append((item, {"labels": colours}))
    _answer_half(colour_items, contributors)

    street = Project.objects.create(
        name="Cars and people",
        description="Draw a box around every car and every person.",
        question="Box every car and person.",
        guidelines="Drag to draw; press 1 or 2 to set the selected box's class; Delete removes "
        "it; Enter submits. Boxes hug the shape.",
        data_kind=Project.DataKind.IMAGE,
        task=Project.Task.BOXES,
        classes=["car", "person"],
        **rates,
    )
    scenes = [
        [(20, 112, 60, 30, "car"), (150, 80, 14, 40, "person")],
        [(100, 115, 70, 28, "car")],
        [(30, 70, 16, 45, "person"), (60, 72, 15, 44, "person")],
        [(10, 118, 55, 26, "car"), (170, 116, 60, 30, "car")],
    ]
    street_items = [
        (
            item_create_image(project=street, contributor=uploader, data=_scene(i, boxes)),
            {
                "boxes": [
                    {"x": x, "y": y, "w": w, "h": h, "label": lab} for x, y, w, h, lab in boxes
                ]
            },
        )
        for i, boxes in enumerate(scenes)
    ]
    _answer_half(street_items, contributors)

    people_places = Project.objects.create(
        name="People and places",
        description="Mark the names of people and places.",
        question="Select each person's and place's name, then press its key.",
        guidelines="Select the words with the mouse (or a finger), then 1 for a person, 2 for a "
        "place. Enter submits.",
        data_kind=Project.DataKind.TEXT,
        task=Project.Task.SPANS,
        classes=["PER", "LOC"],
        **rates,
    )
    name_items = [
        (
            item_create_text(project=people_places, contributor=uploader, text=text),
            {"spans": [{"start": a, "end": b, "label": lab} for a, b, lab in spans]},
        )
        for text, spans in ENTITY_TEXTS
    ]
    _answer_half(name_items, contributors)

    answers = Project.objects.create(
        name="Which answer is better?",
        description="Two answers to one question: pick the better one (RLHF preference data).",
        question="Which answer is better?",
        guidelines="Prefer the answer that is correct, then the one that is more helpful.",
        data_kind=Project.DataKind.TEXT,
        task=Project.Task.PAIRWISE,
        classes=["a", "b"],
        **rates,
    )
    pair_items = [
        (
            item_create_text(
                project=answers, contributor=uploader, text=f"{q}\n\n{a}", text_b=f"{q}\n\n{b}"
            ),
            {"choice": best},
        )
        for q, a, b, best in ANSWER_PAIRS
    ]
    _answer_half(pair_items, contributors)

    pictures = Project.objects.create(
        name="Which picture is clearer?",
        description="Two versions of a picture: pick the clearer one.",
        question="Which picture is clearer?",
        data_kind=Project.DataKind.IMAGE,
        task=Project.Task.PAIRWISE,
        classes=["a", "b"],
        **rates,
    )
    picture_items = []
    for i in range(4):
        sharp = _png(COLOURS[list(COLOURS)[i % 3]], 100 + i)
        with Image.open(io.BytesIO(sharp)) as image:
            blurred = image.filter(ImageFilter.GaussianBlur(4))
            buffer = io.BytesIO()
            blurred.save(buffer, format="PNG")
        first, second, best = (
            (sharp, buffer.getvalue(), "a") if i % 2 else (buffer.getvalue(), sharp, "b")
        )
        item = item_create_image(project=pictures, contributor=uploader, data=first, data_b=second)
        picture_items.append((item, {"choice": best}))
    _answer_half(picture_items, contributors)
    return [tags, colour_tags, street, people_places, answers, pictures]
