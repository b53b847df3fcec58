"""The labeling page in headless Chromium: zoom and pan on image items (boxes drawn while zoomed
are still sent in pixels of the stored image), and the preloaded next item's lease (renewed when
shown, or asked for afresh once it lapsed while the item before was on screen)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from eth_account import Account

from accounts.services import user_get_or_create_for_wallet
from labeling.models import Annotation, Assignment, Item, Project
from labeling.services import item_create_image, item_create_text, lease_grant
from tests.conftest import image_bytes
from tests.integration.test_labeling_ui import (
    answers,
    open_label_page,
    project,
    sign_in,
    wait_for_item,
)
from tests.support.browser import csp_violations

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

STEP = 1.25  # one press of + or -


def zoom_of(page: Any, selector: str) -> float:
    return float(page.get_attribute(selector, "data-zoom") or "1")


def test_a_box_drawn_on_a_zoomed_and_panned_image_is_sent_in_pixels_of_the_stored_image(
    live_server: Any, page: Any
) -> None:
    cars = project("boxes", "image", ["car", "person"])
    W, H = 1200, 900
    item = item_create_image(
        project=cars, contributor=None, data=image_bytes(size=(W, H), colour=(90, 90, 90))
    )
    me = sign_in(page, live_server)
    open_label_page(page, live_server, cars)
    wait_for_item(page, item)
    page.wait_for_function("() => document.querySelector('.box-canvas').width > 0")
    box = page.locator("[data-testid=box-canvas]").bounding_box()
    w, h = box["width"], box["height"]

    def at(fx: float, fy: float) -> tuple[float, float]:
        return box["x"] + fx * w, box["y"] + fy * h

    def drag(start: tuple[float, float], end: tuple[float, float], button: str = "left") -> None:
        page.mouse.move(*start)
        page.mouse.down(button=button)
        page.mouse.move(*end, steps=6)
        page.mouse.up(button=button)

    # Keys typed in a field are not zoom keys.
    page.evaluate(
        "() => { const i = document.createElement('input'); i.id = 'probe';"
        " i.style.position = 'fixed'; i.style.top = '0'; document.body.append(i); }"
    )
    page.focus("#probe")
    page.keyboard.type("+=+0-")
    assert zoom_of(page, ".box-stage") == 1
    page.evaluate("() => { document.getElementById('probe').remove(); }")

    # + three times: zoomed around the centre. A box dragged on screen from 30% to 70% of the
    # width lands where the view puts it in the stored image.
    for _ in range(3):
        page.keyboard.press("+")
    s = STEP**3
    assert zoom_of(page, ".box-stage") == pytest.approx(s, abs=0.01)
    drag(at(0.3, 0.3), at(0.7, 0.6))
    assert page.locator("[data-testid=box-list] li").count() == 1

    def centred(f: float) -> float:  # a screen fraction, zoomed s around the centre
        return 0.5 + (f - 0.5) / s

    expected = [
        (
            centred(0.3) * W,
            centred(0.3) * H,
            (centred(0.7) - centred(0.3)) * W,
            (centred(0.6) - centred(0.3)) * H,
        )
    ]

    # 0 resets; the wheel zooms around the pointer: the point under it stays put.
    page.keyboard.press("0")
    assert zoom_of(page, ".box-stage") == 1
    page.mouse.move(*at(0.2, 0.2))
    page.mouse.wheel(0, -300)
    page.wait_for_function("() => Number(document.querySelector('.box-stage').dataset.zoom) > 1.5")
    s = zoom_of(page, ".box-stage")
    tx, ty = 0.2 * w * (1 - s), 0.2 * h * (1 - s)  # the view's offset, in screen pixels
    # The middle button pans (and draws nothing): the image moves 20% of the width left.
    drag(at(0.6, 0.6), at(0.4, 0.6), button="middle")
    tx -= 0.2 * w
    # Space+drag pans too: 10% of the height up.
    page.keyboard.down(" ")
    drag(at(0.5, 0.5), at(0.5, 0.4))
    page.keyboard.up(" ")
    ty -= 0.1 * h
    assert page.locator("[data-testid=box-list] li").count() == 1
    drag(at(0.2, 0.2), at(0.5, 0.45))

    def image_x(f: float) -> float:
        return (f * w - tx) / s / w * W

    def image_y(f: float) -> float:
        return (f * h - ty) / s / h * H

    expected.append(
        (image_x(0.2), image_y(0.2), image_x(0.5) - image_x(0.2), image_y(0.45) - image_y(0.2))
    )
    assert page.locator("[data-testid=box-list] li").count() == 2
    page.keyboard.press("Enter")
    page.wait_for_selector("text=No tasks left in this project")

    [value] = answers(me)
    assert len(value["boxes"]) == 2
    for got, want in zip(value["boxes"], expected, strict=True):
        for key, number in zip("xywh", want, strict=True):
            # A pixel of the screen is at most 1/s of the stored image's 1200 / ~900 px scale.
            assert abs(got[key] - number) <= 8, (key, got, want)
    assert csp_violations(page) == []


def test_the_boxes_canvas_keeps_the_stages_size_when_the_page_resizes_while_zoomed(
    live_server: Any, page: Any
) -> None:
    """The canvas was sized from the image's bounding box, which the zoom scales: a resize while
    zoomed (the window, or a scrollbar the box list brings) grew its bitmap with the zoom (8x: a
    bitmap browsers refuse to draw), and shrank its lines and labels by as much."""
    cars = project("boxes", "image", ["car", "person"])
    item = item_create_image(
        project=cars, contributor=None, data=image_bytes(size=(1200, 900), colour=(90, 90, 90))
    )
    sign_in(page, live_server)
    open_label_page(page, live_server, cars)
    wait_for_item(page, item)
    page.wait_for_function("() => document.querySelector('.box-canvas').width > 0")
    for _ in range(6):
        page.keyboard.press("+")
    assert zoom_of(page, ".box-stage") > 3
    before = page.evaluate("() => document.querySelector('.box-canvas').clientWidth")
    size = page.viewport_size
    # Narrower and shorter: the stage is as wide as the page allows and 65% of the screen tall.
    page.set_viewport_size({"width": size["width"] - 160, "height": size["height"] - 160})
    page.wait_for_function(
        f"() => document.querySelector('.box-canvas').clientWidth < {before} - 20"
    )
    page.wait_for_timeout(300)  # the ResizeObserver's turn
    bitmap, css, dpr = page.evaluate(
        "() => { const c = document.querySelector('.box-canvas');"
        " return [c.width, c.clientWidth, window.devicePixelRatio || 1]; }"
    )
    assert abs(bitmap - css * dpr) <= 1, (bitmap, css, dpr)


def test_a_classify_image_zooms_by_wheel_and_keys_pans_by_drag_and_is_still_labeled_by_keys(
    live_server: Any, page: Any
) -> None:
    animals = project("classify", "image", ["cat", "dog"])
    item = item_create_image(project=animals, contributor=None, data=image_bytes(size=(640, 480)))
    me = sign_in(page, live_server)
    open_label_page(page, live_server, animals)
    wait_for_item(page, item)
    page.wait_for_function(
        "() => { const i = document.querySelector('.item-image'); return i && i.complete; }"
    )
    frame = page.locator("[data-testid=zoom-frame]").bounding_box()
    centre = (frame["x"] + frame["width"] / 2, frame["y"] + frame["height"] / 2)
    page.mouse.move(*centre)
    page.mouse.wheel(0, -200)
    page.wait_for_function("() => Number(document.querySelector('.zoom-frame').dataset.zoom) > 1")
    page.keyboard.press("+")
    zoomed = zoom_of(page, ".zoom-frame")
    before = page.eval_on_selector(".item-image", "(i) => i.getBoundingClientRect().left")
    page.mouse.down()
    page.mouse.move(centre[0] + 40, centre[1], steps=4)
    page.mouse.up()
    after = page.eval_on_selector(".item-image", "(i) => i.getBoundingClientRect().left")
    assert after == pytest.approx(before + 40, abs=2)
    # Never past 8x, never under 1x.
    for _ in range(15):
        page.keyboard.press("+")
    assert zoomed < zoom_of(page, ".zoom-frame") == 8
    for _ in range(15):
        page.keyboard.press("-")
    assert zoom_of(page, ".zoom-frame") == 1
    hints = page.inner_text("[data-testid=answer]")
    assert "0 resets" in hints
    page.keyboard.press("2")
    page.wait_for_selector("text=No tasks left in this project")
    assert answers(me) == [{"label": "dog"}]


def one_label_project(lease_seconds: int = 60) -> Project:
    tags = project("classify", "text", ["positive", "negative"], lease_seconds=lease_seconds)
    Project.objects.filter(pk=tags.pk).update(overlap=1, max_labels=1)
    tags.refresh_from_db()
    return tags


def wait_for_preload(page: Any, after: Item) -> None:
    page.wait_for_function(
        "(after) => performance.getEntriesByType('resource')"
        ".some((entry) => entry.name.endsWith(`next-task/?after=${after}`))",
        arg=after.pk,
    )


def test_a_preloaded_item_whose_lease_nears_its_end_is_shown_with_its_lease_renewed(
    live_server: Any, page: Any
) -> None:
    tags = one_label_project()
    first, second = (
        item_create_text(project=tags, contributor=None, text=text) for text in ("Nice.", "Bad.")
    )
    me = sign_in(page, live_server)
    open_label_page(page, live_server, tags)
    wait_for_item(page, first)
    wait_for_preload(page, first)
    lease = Assignment.objects.get(item=second, user=me)
    # A long look at the first item: the preloaded one's minute is nearly over.
    Assignment.objects.filter(pk=lease.pk).update(expires_at=timezone.now() + timedelta(seconds=3))
    page.keyboard.press("1")
    wait_for_item(page, second)
    # Its full minute again, from when it was shown (the page's "shown" report).
    deadline = timezone.now() + timedelta(seconds=30)
    while timezone.now() < deadline:
        lease.refresh_from_db()
        if lease.shown_at is not None:
            break
        page.wait_for_timeout(100)
    assert lease.shown_at is not None
    assert (lease.expires_at - timezone.now()).total_seconds() > 50
    page.keyboard.press("2")
    page.wait_for_selector("text=No tasks left in this project")
    assert answers(me) == [{"label": "positive"}, {"label": "negative"}]


def test_a_preloaded_item_whose_short_lease_lapsed_is_not_shown_but_another_is_with_a_word(
    live_server: Any, page: Any
) -> None:
    tags = one_label_project(lease_seconds=15)
    first, second, third = (
        item_create_text(project=tags, contributor=None, text=text)
        for text in ("Nice.", "Bad.", "Meh.")
    )
    me = sign_in(page, live_server)
    open_label_page(page, live_server, tags)
    wait_for_item(page, first)
    wait_for_preload(page, first)
    assert Assignment.objects.filter(item=second, user=me).exists()
    # A look at the first item past the preloaded one's lease (shortened here, 15 s: the page
    # drops a preload with under 10 s left)...
    # 8 s: about 7 s left, clear of the 10 s margin whatever the Date header's whole seconds cost
    # (5.5 s left it at 9.5-10.5 s, and the page kept the preload now and then).
    page.wait_for_timeout(8000)
    # ... and someone else holds it now (it needs one label: its place is theirs).
    Assignment.objects.filter(item=second, user=me).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    someone = user_get_or_create_for_wallet(address=Account.create().address)
    lease_grant(item=second, user=someone)
    page.keyboard.press("1")
    wait_for_item(page, third)
    status = page.locator("[data-testid=task-status]")
    status.locator(f"text=Item {second.pk}, loaded while you worked").wait_for()
    assert (
        "someone else's" in status.inner_text()
        and f"item {third.pk} instead" in status.inner_text()
    )
    page.keyboard.press("2")
    page.wait_for_selector("text=No tasks left in this project")
    assert answers(me) == [{"label": "positive"}, {"label": "negative"}]
    assert not Annotation.objects.filter(item=second).exists()


def test_a_preloaded_item_the_server_says_lapsed_is_leased_again_before_it_is_labeled(
    live_server: Any, page: Any
) -> None:
    """The page's count said the lease had time left (a laptop asleep, a clock set wrong): the
    "shown" report's 409 says otherwise, and the item is asked for again, with a word."""
    tags = one_label_project()
    first, second = (
        item_create_text(project=tags, contributor=None, text=text) for text in ("Nice.", "Bad.")
    )
    me = sign_in(page, live_server)
    open_label_page(page, live_server, tags)
    wait_for_item(page, first)
    wait_for_preload(page, first)
    Assignment.objects.filter(item=second, user=me).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    page.keyboard.press("1")
    wait_for_item(page, second)
    status = page.locator("[data-testid=task-status]")
    status.locator(f"text=Your hold on item {second.pk} had run out").wait_for()
    assert "it is yours again" in status.inner_text()
    lease = Assignment.objects.get(item=second, user=me)
    assert (lease.expires_at - timezone.now()).total_seconds() > 50  # leased again, not lapsed
    page.keyboard.press("2")
    page.wait_for_selector("text=No tasks left in this project")
    assert answers(me) == [{"label": "positive"}, {"label": "negative"}]
