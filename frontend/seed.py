"""Demo data, made through the same services the platform uses."""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

from accounts.demo import demo_accounts
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


@dataclass(frozen=True)
class DemoCast:
    moderator_password: str
    buyer_key: str  # a grant on every dataset
    text_buyer_key: str  # a grant on the text dataset only
    contributors: list[User]
    text_project: Project
    image_project: Project


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
            annotation_create(item=item, annotator=labeler, label=label)
    # Fit each project's model once, as Celery beat would: skills for the profiles, and the items
    # that were left unsure by the default prior are re-decided.
    for project in (text_project, image_project):
        project_refit(project_id=project.pk)
    # Access grants, as a moderator gives them in admin (audited).
    for project in (text_project, image_project):
        grant_give(project=project, buyer=buyer, moderator=moderator, note="demo")
    grant_give(project=text_project, buyer=text_buyer, moderator=moderator, note="demo")
    return DemoCast(
        moderator_password=moderator_password,
        buyer_key=buyer_key,
        text_buyer_key=text_buyer_key,
        contributors=contributors,
        text_project=text_project,
        image_project=image_project,
    )
