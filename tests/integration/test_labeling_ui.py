"""The contributor UI of every task in headless Chromium: keyboard and mouse (boxes drawn by
dragging on the canvas, spans by selecting text), undo, gold feedback, an expired session,
uploads of several files, and every contributor page at phone width."""

from __future__ import annotations

import base64
import io
import random
import re
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from eth_account import Account
from eth_account.messages import encode_defunct
from PIL import Image as PILImage

from accounts.models import User
from accounts.services import user_get_or_create_for_wallet
from labeling.models import Annotation, Assignment, Item, Project, Skip, WorkerSkill
from labeling.services import item_create_image, item_create_text
from rewards.models import LedgerEntry
from tests.conftest import image_bytes
from tests.support.browser import WALLET_SHIM, csp_violations

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def sign_in(page: Any, live_server: Any, address: str | None = None) -> User:
    """A contributor with a wallet, signed in in the page's browser (the session cookie of a
    Django login; the wallet sign-in itself is tested in test_browser.py)."""
    user = user_get_or_create_for_wallet(address=address or Account.create().address)
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": live_server.url}]
    )
    return user


def project(task: str, data_kind: str, classes: list[str], **extra: Any) -> Project:
    return Project.objects.create(
        name=f"{task} {data_kind}",
        data_kind=data_kind,
        task=task,
        classes=classes,
        overlap=3,
        reward_per_label=1,
        **extra,
    )


def answers(user: User) -> list[dict[str, Any]]:
    return list(
        Annotation.objects.filter(annotator=user).order_by("id").values_list("value", flat=True)
    )


def open_label_page(page: Any, live_server: Any, labeled: Project) -> None:
    page.goto(f"{live_server.url}/projects/{labeled.pk}/label/")
    page.wait_for_selector("#task-content[data-item]")


def item_on_screen(page: Any) -> int:
    return int(page.get_attribute("#task-content", "data-item"))


def wait_for_item(page: Any, item: Item) -> None:
    page.wait_for_selector(f"#task-content[data-item='{item.pk}']")


def test_classify_by_keyboard_and_mouse_with_undo_and_no_ctrl_s_skip(
    live_server: Any, page: Any
) -> None:
    sentiment = project(
        "classify",
        "text",
        ["positive", "negative"],
        question="Is this review positive or negative?",
        guidelines="Sarcasm counts as negative.",
    )
    first, second, third = (
        item_create_text(project=sentiment, contributor=None, text=text)
        for text in ("What a lovely day.", "Awful service.", "It is a phone.")
    )
    me = sign_in(page, live_server)
    open_label_page(page, live_server, sentiment)
    assert page.inner_text("[data-testid=question]") == "Is this review positive or negative?"
    assert "Sarcasm counts as negative." in page.inner_text("[data-testid=guidelines]")
    assert page.inner_text("[data-testid=left-count]") == "3"
    assert page.inner_text("[data-testid=done-count]") == "0"
    wait_for_item(page, first)

    # Ctrl+S is the browser's, not a skip; Alt+1 and Meta+1 are not labels either.
    for chord in ("Control+s", "Control+S", "Alt+1", "Meta+1", "Control+1"):
        page.keyboard.press(chord)
    page.wait_for_timeout(300)
    assert item_on_screen(page) == first.pk
    assert not Skip.objects.exists() and not Annotation.objects.exists()

    # The next item is leased and fetched while this one is on screen.
    page.wait_for_function(
        "(after) => performance.getEntriesByType('resource')"
        ".some((entry) => entry.name.endsWith(`next-task/?after=${after}`))",
        arg=first.pk,
    )
    # S then Z with items still queued: the page holds the next item and its preload, and the
    # skipped one comes back beside them (refused there once, "its lease ended").
    page.keyboard.press("s")
    wait_for_item(page, second)
    page.wait_for_function(
        "(after) => performance.getEntriesByType('resource')"
        ".some((entry) => entry.name.endsWith(`next-task/?after=${after}`))",
        arg=second.pk,
    )
    page.keyboard.press("z")
    wait_for_item(page, first)
    assert not Skip.objects.exists()
    page.keyboard.press("1")
    wait_for_item(page, second)
    assert answers(me) == [{"label": "positive"}]
    page.wait_for_selector("[data-testid=done-count]:text-is('1')")

    # Z undoes the last label: the item comes back, and can be answered again.
    page.keyboard.press("z")
    wait_for_item(page, first)
    page.wait_for_selector("[data-testid=task-status]:has-text('Undone')")
    assert answers(me) == []
    page.keyboard.press("2")
    wait_for_item(page, second)
    assert answers(me) == [{"label": "negative"}]

    # A clicked class button gives its focus back: Space doesn't label the next item. The new
    # item takes the focus (a screen reader reads it), not a control.
    page.click("#answer button[data-label=positive]")
    wait_for_item(page, third)
    assert page.evaluate("document.activeElement.id") == "task-content"
    page.keyboard.press(" ")
    page.wait_for_timeout(300)
    assert item_on_screen(page) == third.pk and len(answers(me)) == 2

    page.keyboard.press("s")
    page.wait_for_selector("text=No tasks left in this project")
    assert Skip.objects.filter(item=third, user=me).exists()
    # A skip by mistake (S sits beside the class keys) comes back with Z, like an answer.
    page.keyboard.press("z")
    wait_for_item(page, third)
    assert not Skip.objects.filter(item=third, user=me).exists()
    page.click("#answer button[data-label=negative]")
    page.wait_for_selector("text=No tasks left in this project")
    assert len(answers(me)) == 3
    # The empty queue: no live-looking class buttons, ways back to projects and rewards.
    assert not page.is_visible("#answer button") and not page.is_visible("#task")
    empty = page.locator("[data-testid=empty-queue]")
    assert empty.locator("a[href='/']").is_visible()
    assert empty.locator("a[href='/me/rewards/']").is_visible()
    history = page.locator("[data-testid=history]")
    history.locator(f"text=Item {second.pk}").wait_for()
    assert "waiting for consensus" in history.inner_text()

    # The last answer can be undone from the empty queue too, by a tap (a phone has no Z key).
    undo_here = empty.locator("[data-testid=empty-undo]")
    assert undo_here.is_visible()
    undo_here.click()
    wait_for_item(page, third)
    assert answers(me) == [{"label": "negative"}, {"label": "positive"}]
    page.click("#answer button[data-label=positive]")
    page.wait_for_selector("text=No tasks left in this project")

    # The counts come from the server: a reload keeps them.
    page.reload()
    page.wait_for_selector("text=No tasks left in this project")
    assert page.inner_text("[data-testid=done-count]") == "3"
    assert page.inner_text("[data-testid=left-count]") == "0"
    # ... and Undo, within its minute: the server's window was open, the page had forgotten it.
    empty.locator("[data-testid=empty-undo]").click()
    wait_for_item(page, third)
    assert len(answers(me)) == 2
    page.click("#answer button[data-label=negative]")
    page.wait_for_selector("text=No tasks left in this project")
    assert csp_violations(page) == []


def test_multilabel_toggles_by_keys_and_mouse_and_enter_submits(
    live_server: Any, page: Any
) -> None:
    tags = project("multilabel", "text", ["funny", "rude", "long"])
    first = item_create_text(project=tags, contributor=None, text="Ha! Get lost.")
    second = item_create_text(project=tags, contributor=None, text="Fine.")
    me = sign_in(page, live_server)
    open_label_page(page, live_server, tags)
    wait_for_item(page, first)
    page.keyboard.press("1")
    page.keyboard.press("2")
    page.keyboard.press("3")
    page.keyboard.press("3")  # toggled off again
    assert page.get_attribute("#answer button[data-label=rude]", "aria-pressed") == "true"
    page.keyboard.press("Enter")
    wait_for_item(page, second)
    page.click("#answer button[data-label=long]")
    page.click("[data-testid=submit]")
    page.wait_for_selector("text=No tasks left in this project")
    assert answers(me) == [{"labels": ["funny", "rude"]}, {"labels": ["long"]}]


def test_boxes_are_drawn_moved_resized_relabeled_and_deleted_with_the_mouse(
    live_server: Any, page: Any
) -> None:
    cars = project("boxes", "image", ["car", "person"])
    # Larger than it is shown: what is sent is in pixels of the stored image.
    item = item_create_image(
        project=cars, contributor=None, data=image_bytes(size=(1200, 900), colour=(90, 90, 90))
    )
    me = sign_in(page, live_server)
    open_label_page(page, live_server, cars)
    wait_for_item(page, item)
    page.wait_for_function(
        "() => { const i = document.querySelector('.box-image');"
        " return i && i.complete && i.naturalWidth > 0 && document.querySelector('.box-canvas').width > 0; }"
    )
    box = page.locator("[data-testid=box-canvas]").bounding_box()
    assert box["width"] < 1200  # shown scaled down

    def at(fx: float, fy: float) -> tuple[float, float]:
        return box["x"] + fx * box["width"], box["y"] + fy * box["height"]

    def drag(start: tuple[float, float], end: tuple[float, float]) -> None:
        page.mouse.move(*start)
        page.mouse.down()
        page.mouse.move((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, steps=3)
        page.mouse.move(*end, steps=3)
        page.mouse.up()

    drag(at(0.1, 0.1), at(0.5, 0.4))  # a car, then relabeled: it is selected, 2 picks person
    page.keyboard.press("2")
    drag(at(0.6, 0.6), at(0.8, 0.8))  # a second box, deleted with the Delete key
    page.keyboard.press("Delete")
    drag(at(0.6, 0.6), at(0.7, 0.7))  # a third: moved, then resized by its corner
    drag(at(0.65, 0.65), at(0.75, 0.75))
    drag(at(0.8, 0.8), at(0.9, 0.85))
    assert page.locator("[data-testid=box-list] li").count() == 2
    page.keyboard.press("Enter")
    page.wait_for_selector("text=No tasks left in this project")

    [value] = answers(me)
    boxes = value["boxes"]
    assert [b["label"] for b in boxes] == ["person", "person"]
    expected = [(120, 90, 480, 270), (840, 630, 240, 135)]  # x, y, w, h in stored pixels
    for got, (x, y, w, h) in zip(boxes, expected, strict=True):
        for key, want in zip("xywh", (x, y, w, h), strict=True):
            assert abs(got[key] - want) <= 12, (key, got, want)
    assert csp_violations(page) == []


def test_boxes_are_drawn_moved_resized_selected_and_deleted_with_the_keyboard_alone(
    live_server: Any, page: Any
) -> None:
    """N adds a box centred on the image, a quarter of each side; arrows move it by 1% of the
    image's side (Shift: 10%), Alt+arrows resize it, clamped to the image and never under 1 px;
    Tab cycles the selection, Escape clears it; what is sent is in stored pixels."""
    cars = project("boxes", "image", ["car", "person"])
    width, height = 1200, 800  # 1% is 12 × 8 px; the new box is 300 × 200 at (450, 300)
    item = item_create_image(
        project=cars, contributor=None, data=image_bytes(size=(width, height), colour=(90, 90, 90))
    )
    me = sign_in(page, live_server)
    open_label_page(page, live_server, cars)
    wait_for_item(page, item)
    page.wait_for_function("() => document.querySelector('.box-canvas').width > 0")
    canvas = page.locator("[data-testid=box-canvas]")
    assert canvas.get_attribute("tabindex") == "0"
    assert "Alt+arrows resize" in canvas.get_attribute("aria-label")
    rows = page.locator("[data-testid=box-list] li")
    status = page.locator("[data-testid=task-status]")

    def row(n: int, text: str) -> None:
        page.wait_for_function(
            "([n, text]) => { const li = document.querySelectorAll('[data-testid=box-list] li')[n];"
            " return li && li.textContent.includes(text); }",
            arg=[n, text],
        )

    # The item on screen has the focus; Tab reaches the image.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.testid") == "box-canvas"
    page.keyboard.press("n")
    row(0, "1. car: 300 × 200 px at (450, 300)")
    assert status.inner_text() == "Box 1 of 1: car, x 450 y 300 w 300 h 200"
    for key in ("ArrowRight", "ArrowRight", "ArrowDown", "Shift+ArrowLeft", "Shift+ArrowUp"):
        page.keyboard.press(key)
    row(0, "300 × 200 px at (354, 228)")  # 450 + 2×12 − 120, 300 + 8 − 80
    page.keyboard.press("Alt+ArrowRight")  # grows by 12
    page.keyboard.press("Alt+ArrowUp")  # shrinks by 8
    row(0, "312 × 192 px at (354, 228)")
    page.wait_for_selector(
        "[data-testid=task-status]:text-is('Box 1 of 1: car, x 354 y 228 w 312 h 192')"
    )
    # Clamped: not past the left edge, never under 1 px; Ctrl chords are the browser's.
    for _ in range(5):
        page.keyboard.press("Shift+ArrowLeft")
    for _ in range(3):
        page.keyboard.press("Alt+Shift+ArrowUp")
    page.keyboard.press("Control+ArrowRight")
    row(0, "312 × 1 px at (0, 228)")

    # Escape deselects, so 2 picks the label of the next box instead of relabelling this one.
    page.keyboard.press("Escape")
    page.keyboard.press("2")
    page.keyboard.press("n")
    row(1, "2. person: 300 × 200 px at (450, 300)")
    row(0, "1. car: 312 × 1 px at (0, 228)")
    for _ in range(6):
        page.keyboard.press("Shift+ArrowRight")  # 450 + 720, stopped at the right edge (900)
    page.keyboard.press("Alt+ArrowLeft")  # 288 wide (and not the browser's Back)
    row(1, "288 × 200 px at (900, 300)")
    page.keyboard.press("Alt+ArrowRight")
    page.keyboard.press("Alt+ArrowRight")  # 300 again, then no wider than the image
    page.keyboard.press("Alt+ArrowDown")  # 208 tall
    row(1, "300 × 208 px at (900, 300)")
    assert page.url.endswith(f"/projects/{cars.pk}/label/")

    # Tab goes round to the first box; Delete removes it; Enter submits.
    page.keyboard.press("Tab")
    page.wait_for_selector(
        "[data-testid=task-status]:text-is('Box 1 of 2: car, x 0 y 228 w 312 h 1')"
    )
    assert page.evaluate("document.activeElement.dataset.testid") == "box-canvas"
    page.keyboard.press("Delete")
    assert rows.count() == 1
    row(0, "1. person: 300 × 208 px at (900, 300)")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=No tasks left in this project")
    assert answers(me) == [{"boxes": [{"x": 900, "y": 300, "w": 300, "h": 208, "label": "person"}]}]
    assert csp_violations(page) == []


def char_position(page: Any, index: int, edge: str) -> tuple[float, float]:
    """Where character ``index`` of the span text is drawn: its left or right edge, mid-height."""
    rect = page.evaluate(
        """([index]) => {
          const root = document.querySelector('[data-testid=span-text]');
          const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
          let seen = 0;
          for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            if (index < seen + node.length) {
              const range = document.createRange();
              range.setStart(node, index - seen);
              range.setEnd(node, index - seen + 1);
              const r = range.getBoundingClientRect();
              return { left: r.left, right: r.right, y: r.top + r.height / 2 };
            }
            seen += node.length;
          }
          return null;
        }""",
        [index],
    )
    return (rect["left"] + 1 if edge == "left" else rect["right"] - 1), rect["y"]


def select_text(page: Any, start: int, end: int) -> None:
    page.mouse.move(*char_position(page, start, "left"))
    page.mouse.down()
    page.mouse.move(*char_position(page, end - 1, "right"), steps=5)
    page.mouse.up()


NAMES_TEXT = "Ada Lovelace met Charles Babbage in London."
LONDON = NAMES_TEXT.index("London")
# "Ada Lovelace" a person, "London" a place: the answer every spans test below ends with.
NAMES_ANSWER = {
    "spans": [
        {"start": 0, "end": 12, "label": "PER"},
        {"start": LONDON, "end": LONDON + 6, "label": "LOC"},
    ]
}


def names_item() -> tuple[Project, Item]:
    """A spans project (PER, LOC) with one item: NAMES_TEXT."""
    names = project("spans", "text", ["PER", "LOC"])
    return names, item_create_text(project=names, contributor=None, text=NAMES_TEXT)


def test_spans_are_marked_by_selecting_text_with_a_label_picker_and_removed_by_a_click(
    live_server: Any, page: Any
) -> None:
    names, item = names_item()
    me = sign_in(page, live_server)
    open_label_page(page, live_server, names)
    wait_for_item(page, item)

    select_text(page, 0, 12)  # "Ada Lovelace", PER (the first label)
    page.wait_for_selector("[data-testid=span-text] mark:text-is('Ada Lovelace')")
    babbage = NAMES_TEXT.index("Charles Babbage")
    select_text(page, babbage, babbage + len("Charles Babbage"))
    mark = page.locator("[data-testid=span-text] mark:text-is('Charles Babbage')")
    mark.wait_for()
    mark.click()  # a click on a mark removes it
    mark.wait_for(state="detached")
    page.keyboard.press("2")  # LOC
    select_text(page, LONDON, LONDON + len("London"))
    page.wait_for_selector("[data-testid=span-text] mark:text-is('London')")
    assert page.locator("[data-testid=span-list] li").count() == 2
    page.keyboard.press("Enter")
    page.wait_for_selector("text=No tasks left in this project")
    assert answers(me) == [NAMES_ANSWER]


def test_spans_are_marked_with_the_keyboard_alone(live_server: Any, page: Any) -> None:
    """The text takes focus; arrows move a word cursor (drawn over the marks), Shift extends
    it, a digit marks the words with that label, Delete removes a mark, Enter submits (no
    mouse anywhere)."""
    names, item = names_item()
    me = sign_in(page, live_server)
    open_label_page(page, live_server, names)
    wait_for_item(page, item)
    page.focus("[data-testid=span-text]")
    page.keyboard.press("Home")  # the cursor on "Ada"
    page.keyboard.press("Shift+ArrowRight")  # "Ada Lovelace"
    page.keyboard.press("1")
    page.wait_for_selector("[data-testid=span-list] li:has-text('PER: “Ada Lovelace”')")
    for _ in range(2):  # from "Lovelace", where the cursor stays
        page.keyboard.press("ArrowRight")  # "Charles"
    page.keyboard.press("2")
    page.wait_for_selector("[data-testid=span-list] li:has-text('LOC: “Charles”')")
    page.keyboard.press("Delete")  # a mistake: removed
    page.wait_for_selector("[data-testid=span-list] li:has-text('Charles')", state="detached")
    page.keyboard.press("End")  # "." ends the text: a word of its own
    page.keyboard.press("ArrowLeft")  # "London"
    page.keyboard.press("2")
    page.wait_for_selector("[data-testid=span-list] li:has-text('LOC: “London”')")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=No tasks left in this project")
    assert answers(me) == [NAMES_ANSWER]
    assert csp_violations(page) == []


def test_on_a_phone_a_selection_is_marked_when_a_label_is_tapped(
    live_server: Any, page: Any
) -> None:
    """A touch selection is adjusted with its handles before it is marked: lifting the finger
    marks nothing, tapping a label marks the selection."""
    names, item = names_item()
    phone = page.context.browser.new_context(
        has_touch=True, is_mobile=True, viewport={"width": 390, "height": 844}
    )
    try:
        touch = phone.new_page()
        me = sign_in(touch, live_server)
        open_label_page(touch, live_server, names)
        wait_for_item(touch, item)

        def select(start: int, end: int) -> None:
            touch.evaluate(
                """([start, end]) => {
                  const root = document.querySelector('[data-testid=span-text]');
                  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
                  const range = document.createRange();
                  let seen = 0;
                  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                    if (start >= seen && start < seen + node.length) range.setStart(node, start - seen);
                    if (end > seen && end <= seen + node.length) range.setEnd(node, end - seen);
                    seen += node.length;
                  }
                  const selection = window.getSelection();
                  selection.removeAllRanges();
                  selection.addRange(range);
                }""",
                [start, end],
            )

        select(0, 3)  # the long-press's first word: not marked yet
        touch.dispatch_event("[data-testid=span-text]", "touchend")
        touch.dispatch_event("[data-testid=span-text]", "mouseup")
        assert touch.locator("[data-testid=span-text] mark").count() == 0
        select(0, 12)  # the handles dragged over "Ada Lovelace"
        touch.tap(".picker button[data-label=PER]")
        touch.wait_for_selector("[data-testid=span-text] mark:text-is('Ada Lovelace')")
        select(LONDON, LONDON + 6)
        touch.tap(".picker button[data-label=LOC]")
        touch.wait_for_selector("[data-testid=span-text] mark:text-is('London')")
        touch.tap("[data-testid=submit]")
        touch.wait_for_selector("text=No tasks left in this project")
    finally:
        phone.close()
    assert answers(me) == [NAMES_ANSWER]


def test_pairwise_shows_both_sides_and_takes_keys_and_clicks(live_server: Any, page: Any) -> None:
    better = project("pairwise", "text", ["a", "b"], question="Which answer is more helpful?")
    first = item_create_text(project=better, contributor=None, text="Yes.", text_b="Yes, because…")
    second = item_create_text(project=better, contributor=None, text="Paris.", text_b="Lyon?")
    third = item_create_text(project=better, contributor=None, text="42", text_b="Forty-two")
    me = sign_in(page, live_server)
    open_label_page(page, live_server, better)
    wait_for_item(page, first)
    assert page.inner_text("[data-testid=side-a]").endswith("Yes.")
    assert page.inner_text("[data-testid=side-b]").endswith("Yes, because…")
    page.keyboard.press("b")
    wait_for_item(page, second)
    page.keyboard.press("z")  # undone: the pair comes back showing my choice
    wait_for_item(page, first)
    assert "was" in page.get_attribute("#answer button[data-choice=b]", "class")
    page.keyboard.press("b")
    wait_for_item(page, second)
    page.keyboard.press("1")
    wait_for_item(page, third)
    page.click("#answer button[data-choice=b]")
    page.wait_for_selector("text=No tasks left in this project")
    assert answers(me) == [{"choice": "b"}, {"choice": "a"}, {"choice": "b"}]


def test_a_wrong_gold_answer_shows_the_expected_answer_and_why_before_moving_on(
    live_server: Any, page: Any
) -> None:
    sentiment = project("classify", "text", ["positive", "negative"])
    gold = item_create_text(project=sentiment, contributor=None, text="Great, another delay.")
    Item.objects.filter(pk=gold.pk).update(
        gold_label="negative", gold_explanation="Sarcasm: 'great' is ironic here."
    )
    sign_in(page, live_server)
    open_label_page(page, live_server, sentiment)
    wait_for_item(page, gold)
    page.keyboard.press("1")
    feedback = page.locator("[data-testid=gold-feedback]")
    feedback.wait_for()
    assert page.inner_text("[data-testid=feedback-expected]") == "negative"
    assert "Sarcasm: 'great' is ironic here." in feedback.inner_text()
    page.wait_for_timeout(300)
    assert item_on_screen(page) == gold.pk  # it waits for the contributor
    assert not page.is_visible("[data-testid=skip]")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=No tasks left in this project")
    assert feedback.is_hidden()


def test_an_expired_session_keeps_the_answer_and_sends_it_after_sign_in(
    live_server: Any, page: Any
) -> None:
    wallet = Account.create()
    sentiment = project("classify", "text", ["positive", "negative"])
    item = item_create_text(project=sentiment, contributor=None, text="Lovely.")
    item_create_text(project=sentiment, contributor=None, text="Dreadful.")
    me = sign_in(page, live_server, wallet.address)

    def wallet_sign(message: str, address: str) -> str:
        return wallet.sign_message(encode_defunct(text=message)).signature.to_0x_hex()

    page.expose_function("walletSign", wallet_sign)
    page.add_init_script(f"window.__walletAddress = '{wallet.address}';" + WALLET_SHIM)
    open_label_page(page, live_server, sentiment)
    wait_for_item(page, item)

    page.context.clear_cookies()  # the session is gone
    page.keyboard.press("2")
    page.wait_for_selector("[data-testid=signin-prompt]")
    assert "Your answer is kept in this tab" in page.inner_text("[data-testid=signin-prompt]")
    assert "credentials" not in page.inner_text("body")
    assert not Annotation.objects.exists()
    assert "negative" in page.evaluate(
        f"sessionStorage.getItem('crowdmint.pending.{sentiment.pk}')"
    )

    page.click("[data-testid=signin-again]")
    page.wait_for_url(lambda url: "/login/" in url)
    page.click("#wallet-signin")
    page.wait_for_selector("text=Sent the answer you gave before signing in")
    assert answers(me) == [{"label": "negative"}]
    assert Annotation.objects.get().item_id == item.pk
    assert page.evaluate(f"sessionStorage.getItem('crowdmint.pending.{sentiment.pk}')") is None


def noise(seed: int) -> bytes:
    """A PNG of random pixels: images that are neither the same nor near copies."""
    buffer = io.BytesIO()
    pixels = random.Random(seed).randbytes(64 * 48 * 3)
    PILImage.frombytes("RGB", (64, 48), pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_several_files_upload_at_once_with_progress_errors_in_words_and_a_list(
    live_server: Any, page: Any
) -> None:
    colours = project("classify", "image", ["red", "blue"], licence="CC-BY-4.0")
    me = sign_in(page, live_server)
    page.goto(f"{live_server.url}/projects/{colours.pk}/contribute/")
    page.wait_for_selector("[data-testid=my-uploads]:has-text('Nothing uploaded yet')")
    red, blue, green = (noise(seed) for seed in (1, 2, 3))
    page.set_input_files(
        "[data-testid=file-input]",
        [
            {"name": "red.png", "mimeType": "image/png", "buffer": red},
            {"name": "blue.png", "mimeType": "image/png", "buffer": blue},
            {"name": "notes.png", "mimeType": "image/png", "buffer": b"not an image at all"},
            {"name": "huge.png", "mimeType": "image/png", "buffer": b"\0" * (11 * 1024 * 1024)},
        ],
    )
    # Dropped onto the drop zone, as from a file manager.
    page.evaluate(
        """([data]) => {
          const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
          const transfer = new DataTransfer();
          transfer.items.add(new File([bytes], "green.png", { type: "image/png" }));
          const zone = document.querySelector("[data-testid=dropzone]");
          zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: transfer, bubbles: true, cancelable: true }));
          zone.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
        }""",
        [base64.b64encode(green).decode()],
    )
    rows = page.locator("[data-testid=upload-row]")
    assert rows.count() == 5
    assert rows.nth(3).locator(".note").inner_text() == "This file is 11 MB; the limit is 10 MB."

    page.click("[data-testid=upload-button]")
    page.wait_for_selector("[data-testid=contribute-status]:has-text('Tick the licence box')")
    assert not Item.objects.exists()
    page.check("[data-testid=licence]")
    # Two clicks in a row: the button is disabled by the first, and everything uploads once.
    assert page.evaluate(
        """() => { const b = document.querySelector("[data-testid=upload-button]");
                   b.click(); b.click(); return b.disabled; }"""
    )
    page.wait_for_selector("[data-testid=contribute-status]:has-text('3 of 4 uploaded')")
    assert not page.locator("[data-testid=upload-button]").is_disabled()
    assert Item.objects.filter(project=colours, contributor=me).count() == 3
    notes = [rows.nth(i).locator(".note").inner_text() for i in range(5)]
    assert notes[0].startswith("Uploaded as item") and notes[1].startswith("Uploaded as item")
    assert notes[2] == "This isn't an image we can read. Use a JPEG, PNG or WebP file."
    assert notes[4].startswith("Uploaded as item")
    assert all(rows.nth(i).locator("progress").get_attribute("value") == "1" for i in (0, 1, 4))
    uploads = page.locator("[data-testid=my-uploads] li")
    uploads.nth(2).wait_for()
    assert uploads.count() == 3
    assert (
        page.locator("[data-testid=upload-state]").all_inner_texts() == ["Waiting for labels"] * 3
    )
    assert page.locator("[data-testid=my-uploads] img.thumb").count() == 3

    # The same image again: refused as a duplicate, in words.
    page.set_input_files(
        "[data-testid=file-input]",
        [{"name": "red-again.png", "mimeType": "image/png", "buffer": red}],
    )
    page.click("[data-testid=upload-button]")
    rows.nth(5).locator(".note:has-text('a duplicate of item')").wait_for()

    page.context.set_offline(True)
    page.wait_for_selector("[data-testid=offline]:visible")
    page.click("[data-testid=upload-button]")
    page.wait_for_selector("[data-testid=contribute-status]:has-text('You are offline')")
    page.context.set_offline(False)
    page.wait_for_selector("[data-testid=offline]", state="hidden")
    assert csp_violations(page) == []


def test_every_contributor_page_fits_a_360_px_phone(live_server: Any, page: Any) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    text = project(
        "classify",
        "text",
        ["positive", "negative", "neutral", "mixed", "unclear"],
        question="Is this review positive or negative?",
        guidelines="A long guideline paragraph. " * 20,
    )
    text.name = "A project with a rather long name that must wrap on a phone"
    text.save(update_fields=["name"])
    item_create_text(project=text, contributor=None, text="Supercalifragilistic" * 8)
    boxes = project("boxes", "image", ["car", "person"])
    item_create_image(project=boxes, contributor=None, data=image_bytes(size=(1600, 400)))
    pairs = project("pairwise", "image", ["a", "b"])
    item_create_image(
        project=pairs,
        contributor=None,
        data=image_bytes(size=(800, 600)),
        data_b=image_bytes(size=(800, 600), colour=(0, 0, 200)),
    )
    spans = project("spans", "text", ["PER", "LOC"])
    item_create_text(project=spans, contributor=None, text="Ada Lovelace met Charles Babbage.")
    empty = project("multilabel", "image", ["a", "b"])

    def fits(path: str, ready: str) -> None:
        page.goto(f"{live_server.url}{path}")
        page.wait_for_selector(ready)
        page.wait_for_timeout(100)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, (path, width)

    fits("/", "h1")
    fits("/login/", "#wallet-signin")
    fits("/buyers/", "#buyer-key")
    me = sign_in(page, live_server)
    entry = LedgerEntry.objects.create(
        user=me,
        amount=1234567890123456789,
        reason="label",
        source="annotation:1",
        project=text,
        item=Item.objects.filter(project=text).first(),
    )
    WorkerSkill.objects.create(
        project=text, user=me, accuracy=0.9, confusion=[], label_count=1, updated_at=timezone.now()
    )
    for labeled in (text, boxes, pairs, spans):
        fits(f"/projects/{labeled.pk}/label/", "#task-content[data-item]")
    fits(f"/projects/{empty.pk}/label/", "text=No tasks left in this project")
    fits(f"/projects/{boxes.pk}/contribute/", "[data-testid=dropzone]")
    fits(f"/projects/{text.pk}/contribute/", "textarea[name=text]")
    fits(f"/projects/{pairs.pk}/contribute/", "input[name=file_b]")
    fits("/me/rewards/", "[data-testid=credit-for]")
    assert f"on item {entry.item_id} (" in page.inner_text("[data-testid=credit-for]")
    fits(f"/me/receipts/{entry.pk}/", "[data-testid=receipt-amount]")
    assert csp_violations(page) == []


def test_a_text_project_takes_several_txt_files_at_once_beside_the_text_box(
    live_server: Any, page: Any
) -> None:
    reviews = project("classify", "text", ["positive", "negative"])
    me = sign_in(page, live_server)
    page.goto(f"{live_server.url}/projects/{reviews.pk}/contribute/")
    page.set_input_files(
        "[data-testid=file-input]",
        [
            {"name": "one.txt", "mimeType": "text/plain", "buffer": b"First review."},
            {"name": "two.txt", "mimeType": "text/plain", "buffer": "Zweite Kritik ✓".encode()},
            {"name": "photo.png", "mimeType": "image/png", "buffer": image_bytes()},
        ],
    )
    page.check("[data-testid=licence]")
    page.click("[data-testid=upload-button]")
    page.wait_for_selector("[data-testid=contribute-status]:has-text('2 of 2 uploaded')")
    assert sorted(Item.objects.filter(contributor=me).values_list("text", flat=True)) == [
        "First review.",
        "Zweite Kritik ✓",
    ]
    note = page.locator("[data-testid=upload-row]").nth(2).locator(".note").inner_text()
    assert note == "This isn't a text file: use .txt files, one text each."
    page.wait_for_selector("[data-testid=my-uploads] li:has-text('Zweite Kritik')")


def test_a_page_left_open_across_a_sign_in_reloads_and_sends_the_answer(
    live_server: Any, page: Any
) -> None:
    sentiment = project("classify", "text", ["positive", "negative"])
    item = item_create_text(project=sentiment, contributor=None, text="Lovely.")
    me = sign_in(page, live_server)
    open_label_page(page, live_server, sentiment)
    wait_for_item(page, item)
    # Signing in again in another tab rotates the CSRF token this page holds.
    page.evaluate("document.querySelector('meta[name=csrf-token]').content = 'x'.repeat(64)")
    page.keyboard.press("1")
    page.wait_for_selector("text=Sent the answer you gave before signing in")
    assert answers(me) == [{"label": "positive"}]


def test_a_throttled_answer_stays_on_screen_to_be_sent_again(live_server: Any, page: Any) -> None:
    sentiment = project("classify", "text", ["positive", "negative"])
    item = item_create_text(project=sentiment, contributor=None, text="Lovely.")
    me = sign_in(page, live_server)
    open_label_page(page, live_server, sentiment)
    wait_for_item(page, item)
    # The server's per-contributor label rate, as DRF words its 429.
    throttled = {"detail": "Request was throttled. Expected available in 7 seconds."}
    page.route("**/annotations/", lambda route: route.fulfill(status=429, json=throttled))
    page.keyboard.press("1")
    page.wait_for_selector("[data-testid=task-status]:has-text('Wait 7 s')")
    assert item_on_screen(page) == item.pk and answers(me) == []
    page.unroute("**/annotations/")
    page.keyboard.press("1")
    page.wait_for_selector("text=No tasks left in this project")
    assert answers(me) == [{"label": "positive"}]


def test_an_answer_refused_as_its_lease_ran_out_comes_back_with_the_item_to_be_sent_again(
    live_server: Any, page: Any
) -> None:
    tags = project("multilabel", "text", ["funny", "rude", "long"])
    item = item_create_text(project=tags, contributor=None, text="Ha! Get lost.")
    me = sign_in(page, live_server)
    open_label_page(page, live_server, tags)
    wait_for_item(page, item)
    page.keyboard.press("1")
    page.keyboard.press("3")
    # The tab was left open past the project's lease_seconds.
    Assignment.objects.filter(item=item, user=me).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    page.keyboard.press("Enter")
    # Refused (409), but the item is free and is leased to me again: it comes back with the
    # toggles I had set, not blank, nor as "not assigned to you: ask for your next task".
    page.wait_for_selector("[data-testid=task-status]:has-text('It is yours again')")
    assert item_on_screen(page) == item.pk and answers(me) == []
    pressed = page.locator("#answer button[aria-pressed=true]").evaluate_all(
        "buttons => buttons.map((b) => b.dataset.label)"
    )
    assert pressed == ["funny", "long"]
    page.keyboard.press("Enter")
    page.wait_for_selector("text=No tasks left in this project")
    assert answers(me) == [{"labels": ["funny", "long"]}]


def test_a_server_error_keeps_the_drawn_boxes_on_screen_to_be_sent_again(
    live_server: Any, page: Any
) -> None:
    """A 5xx is the server's failure, not the answer's: like a dropped connection, the boxes
    stay drawn, the status says so, and sending again saves them."""
    cars = project("boxes", "image", ["car", "person"])
    item = item_create_image(
        project=cars, contributor=None, data=image_bytes(size=(800, 600), colour=(90, 90, 90))
    )
    me = sign_in(page, live_server)
    open_label_page(page, live_server, cars)
    wait_for_item(page, item)
    page.wait_for_function("() => document.querySelector('.box-canvas').width > 0")
    box = page.locator("[data-testid=box-canvas]").bounding_box()
    for start, end in (((0.1, 0.1), (0.4, 0.4)), ((0.5, 0.5), (0.9, 0.8))):
        page.mouse.move(box["x"] + start[0] * box["width"], box["y"] + start[1] * box["height"])
        page.mouse.down()
        page.mouse.move(
            box["x"] + end[0] * box["width"], box["y"] + end[1] * box["height"], steps=4
        )
        page.mouse.up()
    assert page.locator("[data-testid=box-list] li").count() == 2

    failed: list[str] = []

    def fail_once(route: Any) -> None:
        if route.request.method == "POST" and not failed:
            failed.append(route.request.url)
            route.fulfill(status=503, body="Service Unavailable", content_type="text/plain")
        else:
            route.continue_()

    page.route("**/annotations/", fail_once)
    page.click("[data-testid=submit]")
    status = page.locator("[data-testid=task-status]")
    status.locator("text=server had an error").wait_for()
    assert "try again" in status.inner_text() and "refused" not in status.inner_text()
    page.wait_for_timeout(300)
    assert item_on_screen(page) == item.pk and answers(me) == []
    assert page.locator("[data-testid=box-list] li").count() == 2
    page.click("[data-testid=submit]")
    page.wait_for_selector("text=No tasks left in this project")
    assert len(failed) == 1
    [value] = answers(me)
    assert [b["label"] for b in value["boxes"]] == ["car", "car"]


def test_on_a_phone_a_two_finger_pinch_on_the_image_draws_no_box(
    live_server: Any, page: Any
) -> None:
    """One finger draws; a second one down meanwhile (a pinch) cancels the box being drawn, and
    zooms the image."""
    cars = project("boxes", "image", ["car", "person"])
    item = item_create_image(project=cars, contributor=None, data=image_bytes(size=(800, 600)))
    phone = page.context.browser.new_context(
        has_touch=True, is_mobile=True, viewport={"width": 390, "height": 844}
    )
    try:
        touch = phone.new_page()
        sign_in(touch, live_server)
        open_label_page(touch, live_server, cars)
        wait_for_item(touch, item)
        touch.wait_for_function("() => document.querySelector('.box-canvas').width > 0")
        box = touch.locator("[data-testid=box-canvas]").bounding_box()

        def at(fx: float, fy: float, finger: int) -> dict[str, float]:
            return {
                "x": box["x"] + fx * box["width"],
                "y": box["y"] + fy * box["height"],
                "id": finger,
            }

        # Real touch points (each a pointer of its own, pointerType "touch"), as a pinch makes.
        cdp = phone.new_cdp_session(touch)

        def touches(kind: str, *points: dict[str, float]) -> None:
            cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": list(points)})

        touches("touchStart", at(0.2, 0.2, 0))
        touches("touchMove", at(0.3, 0.3, 0))
        touches("touchStart", at(0.3, 0.3, 0), at(0.8, 0.8, 1))
        for step in range(1, 5):
            spread = 0.05 * step
            touches("touchMove", at(0.3 - spread, 0.3 - spread, 0), at(0.8 + spread / 2, 0.8, 1))
        touches("touchMove", at(0.1, 0.1, 0))  # the second finger lifts first
        touches("touchEnd")
        touch.wait_for_timeout(200)
        assert touch.locator("[data-testid=box-list] li").count() == 0
        # The fingers spread apart: the image is zoomed in instead.
        assert float(touch.get_attribute(".box-stage", "data-zoom") or "1") > 1

        # One finger still draws a box.
        touches("touchStart", at(0.2, 0.2, 0))
        for step in range(1, 5):
            touches("touchMove", at(0.2 + 0.1 * step, 0.2 + 0.1 * step, 0))
        touches("touchEnd")
        touch.locator("[data-testid=box-list] li").nth(0).wait_for()
        assert touch.locator("[data-testid=box-list] li").count() == 1
    finally:
        phone.close()


# Every control of a page, as {what, width, height}: buttons, links, disclosure toggles, file
# pickers. Links inside a paragraph of prose are words of a sentence, left out (a 44 px line of
# text would be no easier to tap, and harder to read); a link styled as a button is a control.
CONTROLS_JS = """() => [...document.querySelectorAll("button, a, summary, input[type=file], .file-pick")]
  .filter((el) => !el.matches("p a:not(.button), .file-pick input"))
  .filter((el) => el.getClientRects().length && getComputedStyle(el).visibility !== "hidden")
  .map((el) => { const r = el.getBoundingClientRect();
    return { what: el.outerHTML.slice(0, 80), width: r.width, height: r.height }; })"""

KEY_WORDS = r"\b(press|enter|delete|tab|shift|keys?|arrows?)\b|\d\s*[–-]\s*\d|\b[1-9] or\b"


def test_on_a_phone_every_control_is_a_44_px_tap_target_and_no_hint_names_a_key(
    live_server: Any, page: Any
) -> None:
    tags = project("multilabel", "text", ["funny", "rude"], guidelines="Tag what you see.")
    item_create_text(project=tags, contributor=None, text="Ha! Get lost.")
    sentiment = project("classify", "text", ["positive", "negative"])
    item_create_text(project=sentiment, contributor=None, text="Lovely.")
    better = project("pairwise", "text", ["a", "b"])
    item_create_text(project=better, contributor=None, text="Yes.", text_b="Yes, because…")
    cars = project("boxes", "image", ["car", "person"])
    item_create_image(project=cars, contributor=None, data=image_bytes(size=(800, 600)))
    names, _ = names_item()
    colours = project("pairwise", "image", ["a", "b"])
    phone = page.context.browser.new_context(
        has_touch=True, is_mobile=True, viewport={"width": 360, "height": 740}
    )
    try:
        touch = phone.new_page()
        me = sign_in(touch, live_server)
        LedgerEntry.objects.create(
            user=me,
            amount=10**18,
            reason="label",
            source="annotation:1",
            project=tags,
            item=Item.objects.filter(project=tags).first(),
        )

        def check(ready: str) -> None:
            touch.wait_for_selector(ready)
            touch.wait_for_timeout(100)
            small = [c for c in touch.evaluate(CONTROLS_JS) if c["height"] < 44 or c["width"] < 44]
            assert small == [], (touch.url, small)
            width = touch.evaluate("document.documentElement.scrollWidth")
            assert width <= touch.evaluate("window.innerWidth"), (touch.url, width)

        for labeled in (tags, sentiment, better, cars, names):
            open_label_page(touch, live_server, labeled)
            check("#answer button")
            hint = touch.inner_text("#answer .hint")
            assert not re.search(KEY_WORDS, hint, re.IGNORECASE), hint
            assert touch.locator("kbd:visible").count() == 0
        open_label_page(touch, live_server, cars)
        box = touch.locator("[data-testid=box-canvas]").bounding_box()
        cdp = phone.new_cdp_session(touch)
        for kind, fraction in (("touchStart", 0.2), ("touchMove", 0.4), ("touchMove", 0.6)):
            x, y = box["x"] + fraction * box["width"], box["y"] + fraction * box["height"]
            cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y}]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        check("[data-testid=box-list] li button")  # its Delete button
        touch.goto(f"{live_server.url}/me/rewards/")
        check("[data-testid=receipt-link]")
        touch.goto(f"{live_server.url}/projects/{colours.pk}/contribute/")
        check("input[name=file_b]")
        touch.goto(f"{live_server.url}/projects/{cars.pk}/contribute/")
        check("[data-testid=dropzone]")
    finally:
        phone.close()


def test_on_a_phone_the_guidelines_start_folded_and_the_answer_buttons_are_in_view(
    live_server: Any, page: Any
) -> None:
    better = project(
        "pairwise",
        "text",
        ["a", "b"],
        question="Which answer is more helpful to the person asking?",
        guidelines="Prefer the answer that explains itself. " * 12,
    )
    item = item_create_text(
        project=better,
        contributor=None,
        text="Paris is the capital of France, and has been for centuries.",
        text_b="Lyon, I think, though I am not sure of it.",
    )
    phone = page.context.browser.new_context(
        has_touch=True, is_mobile=True, viewport={"width": 390, "height": 664}
    )
    try:
        touch = phone.new_page()
        sign_in(touch, live_server)
        open_label_page(touch, live_server, better)
        wait_for_item(touch, item)
        assert touch.get_attribute("[data-testid=guidelines]", "open") is None
        assert touch.locator("[data-testid=question]").is_visible()
        assert touch.evaluate("window.scrollY") == 0
        for choice in ("a", "b"):
            top = touch.locator(f"#answer button[data-choice={choice}]").bounding_box()["y"]
            assert top >= 0 and top + 44 <= 664, (choice, top)
        touch.tap("[data-testid=guidelines] summary")  # a tap opens them
        touch.wait_for_selector("[data-testid=guidelines] p:visible")
    finally:
        phone.close()
    # A desktop shows them open.
    sign_in(page, live_server)
    open_label_page(page, live_server, better)
    assert page.get_attribute("[data-testid=guidelines]", "open") is not None
