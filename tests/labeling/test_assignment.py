"""Leases, gold and undo: what contributors are handed, and what they may answer or take back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from labeling.models import Annotation, Assignment, Item, Project
from labeling.services import item_create_text
from labeling.services.assignment import gold_rate
from tests.conftest import Contributor

pytestmark = pytest.mark.django_db


def next_task(who: Contributor, project: Project, **params: Any) -> Any:
    return who.api.get(f"/api/v1/projects/{project.pk}/next-task/", params)


def answer(who: Contributor, item_id: int, body: dict[str, Any]) -> Any:
    return who.api.post(f"/api/v1/items/{item_id}/annotations/", body, format="json")


def items(project: Project, n: int, prefix: str = "item") -> list[Item]:
    return [
        item_create_text(project=project, contributor=None, text=f"{prefix} {i}") for i in range(n)
    ]


@pytest.fixture
def project(text_project: Project) -> Project:
    # Gold aside (no gold items in these tests unless they add some), one label decides.
    Project.objects.filter(pk=text_project.pk).update(overlap=1, max_labels=1)
    text_project.refresh_from_db()
    return text_project


def test_next_task_leases_the_item_and_the_same_lease_comes_back_on_reload(
    contributor: Contributor, project: Project
) -> None:
    [item] = items(project, 1)
    first = next_task(contributor, project).json()
    assert first["id"] == item.pk and first["lease_expires_at"]
    assert next_task(contributor, project).json()["id"] == item.pk  # a reload: same lease
    lease = Assignment.objects.get(item=item, user=contributor.user)
    left = (lease.expires_at - lease.served_at).total_seconds()
    assert left == pytest.approx(project.lease_seconds, abs=1)


def test_a_lease_holds_the_items_place_so_nobody_does_work_that_would_be_refused(
    contributor: Contributor, second_contributor: Contributor, project: Project
) -> None:
    [item] = items(project, 1)  # needs one label
    assert next_task(contributor, project).json()["id"] == item.pk
    assert next_task(second_contributor, project).status_code == 204
    refused = answer(second_contributor, item.pk, {"label": "positive"})
    assert refused.status_code == 409
    assert "not assigned to you" in refused.json()["detail"]
    assert answer(contributor, item.pk, {"label": "positive"}).status_code == 201


def test_an_expired_or_skipped_lease_gives_the_place_back(
    contributor: Contributor, second_contributor: Contributor, project: Project
) -> None:
    first, second = items(project, 2)
    assert next_task(contributor, project).json()["id"] == first.pk
    Assignment.objects.filter(item=first).update(expires_at=timezone.now() - timedelta(seconds=1))
    late = answer(contributor, first.pk, {"label": "positive"})
    assert late.status_code == 409  # the lease expired: the work is refused
    assert next_task(second_contributor, project).json()["id"] == first.pk
    assert next_task(contributor, project).json()["id"] == second.pk
    assert contributor.api.post(f"/api/v1/items/{second.pk}/skip").status_code == 204
    assert not Annotation.objects.exists()


def test_items_closest_to_a_decision_come_first(
    make_contributor: Callable[[], Contributor], text_project: Project
) -> None:
    a, b = items(text_project, 2)  # overlap 3
    helper = make_contributor()
    from tests.conftest import serve

    serve(b, helper)
    assert answer(helper, b.pk, {"label": "positive"}).status_code == 201
    assert next_task(make_contributor(), text_project).json()["id"] == b.pk


def test_one_preloaded_lease_at_most_beside_the_item_on_screen(
    contributor: Contributor, project: Project
) -> None:
    first, second, third = items(project, 3)
    on_screen = next_task(contributor, project).json()["id"]
    preloaded = next_task(contributor, project, after=on_screen).json()["id"]
    assert {on_screen, preloaded} == {first.pk, second.pk}
    assert next_task(contributor, project, after=preloaded).json()["id"] == on_screen
    assert Assignment.objects.filter(user=contributor.user).count() == 2
    assert next_task(contributor, project, after="x").status_code == 400


def test_gold_looks_like_any_item_and_a_wrong_answer_gets_feedback(
    contributor: Contributor, project: Project
) -> None:
    [gold] = items(project, 1, prefix="gold")
    Item.objects.filter(pk=gold.pk).update(
        gold_label="negative", gold_explanation="Sarcasm: 'great, it broke again' is negative."
    )
    [plain] = items(project, 1, prefix="plain")
    served = [next_task(contributor, project).json()]
    served.append(next_task(contributor, project, after=served[0]["id"]).json())
    assert {s["id"] for s in served} == {gold.pk, plain.pk}
    assert set(served[0]) == set(served[1])  # the same fields, gold or not
    assert all("gold" not in key for key in served[0])
    wrong = answer(contributor, gold.pk, {"label": "positive"})
    assert wrong.status_code == 201
    assert wrong.json()["feedback"] == {
        "correct": False,
        "expected": {"label": "negative"},
        "explanation": "Sarcasm: 'great, it broke again' is negative.",
    }
    right = answer(contributor, plain.pk, {"label": "positive"})
    assert "feedback" not in right.json()
    # The gold item is retired for this contributor: it is never served to them again.
    assert next_task(contributor, project).status_code == 204


def test_a_right_gold_answer_is_told_nothing(contributor: Contributor, project: Project) -> None:
    [gold] = items(project, 1, prefix="gold")
    Item.objects.filter(pk=gold.pk).update(gold_label="positive")
    served = next_task(contributor, project).json()
    assert served["id"] == gold.pk
    assert "feedback" not in answer(contributor, gold.pk, {"label": "positive"}).json()


def test_the_gold_rate_tapers_with_a_good_record_and_stays_high_for_a_poor_one() -> None:
    assert gold_rate(answered=0, correct=0) == pytest.approx(0.30)
    assert gold_rate(answered=30, correct=30) == pytest.approx(0.175)
    assert gold_rate(answered=50, correct=49) == pytest.approx(0.05)
    assert gold_rate(answered=200, correct=200) == pytest.approx(0.05)
    assert gold_rate(answered=50, correct=40) == pytest.approx(0.30)  # 80%: still checked often


def test_newcomers_get_about_thirty_percent_gold(
    contributor: Contributor, project: Project
) -> None:
    golds = items(project, 60, prefix="gold")
    Item.objects.filter(pk__in=[g.pk for g in golds]).update(gold_label="positive")
    items(project, 60, prefix="plain")
    served_gold = 0
    for _ in range(60):
        task = next_task(contributor, project).json()
        served_gold += task["text"].startswith("gold")
        answer(contributor, task["id"], {"label": "negative"})  # a poor record: the rate stays
    assert 10 <= served_gold <= 26  # 30% of 60 is 18


def test_each_contributor_meets_the_gold_items_in_an_order_of_their_own(
    make_contributor: Callable[[], Contributor], project: Project
) -> None:
    """In one shared order, a ring of new wallets met the same gold items first and passed
    them by sharing the feedback one of them got."""
    from labeling.models import Assignment
    from labeling.services.assignment import _lease_gold

    golds = items(project, 12, prefix="gold")
    Item.objects.filter(pk__in=[g.pk for g in golds]).update(gold_label="positive")
    firsts = set()
    for _ in range(6):
        who = make_contributor()
        orders = []
        for _ in range(3):
            lease = _lease_gold(project, who.user)
            assert lease is not None
            orders.append(lease.item_id)
            Assignment.objects.filter(pk=lease.pk).update(released_at=timezone.now())
            Annotation.objects.create(
                item_id=lease.item_id, annotator=who.user, label="positive", value={}
            )
        assert len(set(orders)) == 3  # never the same gold twice
        firsts.add(orders[0])
    # One shared order gave all six the same first gold item; six orders of their own, the same
    # one with odds of 12**-5.
    assert len(firsts) >= 2


def test_a_skip_is_taken_back_within_the_undo_window(
    contributor: Contributor, second_contributor: Contributor, project: Project, settings: Any
) -> None:
    first, second = items(project, 2)
    assert next_task(contributor, project).json()["id"] == first.pk
    assert contributor.api.post(f"/api/v1/items/{first.pk}/skip").status_code == 204
    back = contributor.api.delete(f"/api/v1/items/{first.pk}/skip")
    assert back.status_code == 200 and back.json()["id"] == first.pk
    assert back.json()["lease_expires_at"]
    assert answer(contributor, first.pk, {"label": "positive"}).status_code == 201
    again = contributor.api.delete(f"/api/v1/items/{first.pk}/skip")
    assert again.status_code == 409 and "haven't skipped" in again.json()["detail"]
    # Too late, or the place was taken meanwhile: refused, and the skip stands.
    assert next_task(contributor, project).json()["id"] == second.pk
    assert contributor.api.post(f"/api/v1/items/{second.pk}/skip").status_code == 204
    assert next_task(second_contributor, project).json()["id"] == second.pk  # its one place
    taken = contributor.api.delete(f"/api/v1/items/{second.pk}/skip")
    assert taken.status_code == 409 and "no longer needs your label" in taken.json()["detail"]
    settings.UNDO_SECONDS = 0
    late = contributor.api.delete(f"/api/v1/items/{second.pk}/skip")
    assert late.status_code == 409 and late.json()["detail"].startswith("too late")


def test_a_skip_taken_back_gives_the_lease_back_as_it_was_never_a_longer_hold(
    contributor: Contributor, project: Project
) -> None:
    """Skipping and taking the skip back, again and again, renewed the lease each time: one
    wallet held an item's place for as long as it liked."""
    [item] = items(project, 1)
    assert next_task(contributor, project).json()["id"] == item.pk
    lease = Assignment.objects.get(item=item, user=contributor.user)
    soon = timezone.now() + timedelta(seconds=30)
    Assignment.objects.filter(pk=lease.pk).update(expires_at=soon)
    for _ in range(3):
        assert contributor.api.post(f"/api/v1/items/{item.pk}/skip").status_code == 204
        back = contributor.api.delete(f"/api/v1/items/{item.pk}/skip")
        assert back.status_code == 200
        lease.refresh_from_db()
        assert lease.expires_at == soon and lease.released_at is None


def test_a_skip_of_an_ended_lease_cant_be_taken_back_into_a_new_one(
    contributor: Contributor, project: Project
) -> None:
    """A skip of an item served long ago (its lease ended), then its undo, handed out a fresh
    lease past the room check and the two-lease limit."""
    first, second, third = items(project, 3)
    assert next_task(contributor, project).json()["id"] == first.pk
    Assignment.objects.filter(item=first).update(expires_at=timezone.now())
    assert contributor.api.post(f"/api/v1/items/{first.pk}/skip").status_code == 204
    refused = contributor.api.delete(f"/api/v1/items/{first.pk}/skip")
    assert refused.status_code == 409 and "its lease ended" in refused.json()["detail"]
    assert (
        not Assignment.objects.filter(item=first, released_at__isnull=True)
        .exclude(expires_at__lte=timezone.now())
        .exists()
    )


def test_taking_skips_back_holds_one_lease_past_the_lookahead_never_more(
    contributor: Contributor, project: Project
) -> None:
    """The page holds the next item and its preload after a skip: the skipped one comes back
    beside them (a third lease); taking back a second skip would make four, and is refused."""
    a, b, c, d = items(project, 4)
    for item in (a, b):
        assert next_task(contributor, project, after=a.pk).json()["id"] == item.pk
        assert contributor.api.post(f"/api/v1/items/{item.pk}/skip").status_code == 204
    assert next_task(contributor, project).json()["id"] == c.pk
    assert next_task(contributor, project, after=c.pk).json()["id"] == d.pk  # two live leases
    assert contributor.api.delete(f"/api/v1/items/{a.pk}/skip").status_code == 200
    assert contributor.api.delete(f"/api/v1/items/{b.pk}/skip").status_code == 409
    live = Assignment.objects.filter(
        user=contributor.user, released_at__isnull=True, answered_at__isnull=True
    )
    assert sorted(live.values_list("item_id", flat=True)) == [a.pk, c.pk, d.pk]


def test_a_gold_items_skip_is_taken_back_like_any_other(
    contributor: Contributor, make_contributor: Callable[[], Contributor], project: Project
) -> None:
    """Gold has answers past its overlap (it is never decided): the undo refused it, and only
    it, so skip-then-undo told a contributor which items were gold and let them dodge every one."""
    [gold] = items(project, 1, prefix="gold")
    Item.objects.filter(pk=gold.pk).update(gold_label="positive")
    for _ in range(3):
        other = make_contributor()
        Annotation.objects.create(item=gold, annotator=other.user, label="positive", value={})
    Item.objects.filter(pk=gold.pk).update(label_count=3)
    assert next_task(contributor, project).json()["id"] == gold.pk
    assert contributor.api.post(f"/api/v1/items/{gold.pk}/skip").status_code == 204
    back = contributor.api.delete(f"/api/v1/items/{gold.pk}/skip")
    assert back.status_code == 200 and back.json()["id"] == gold.pk


def test_undo_gives_the_item_back_within_the_window(
    contributor: Contributor, text_project: Project, settings: Any
) -> None:
    [item] = items(text_project, 1)
    next_task(contributor, text_project)
    given = answer(contributor, item.pk, {"label": "positive"}).json()
    assert given["undo_until"]
    history = contributor.api.get("/api/v1/me/labels/", {"project": text_project.pk}).json()
    assert [h["id"] for h in history] == [given["id"]] and history[0]["item_status"] == "open"
    assert contributor.api.delete(f"/api/v1/annotations/{given['id']}").status_code == 204
    item.refresh_from_db()
    assert item.label_count == 0 and not Annotation.objects.exists()
    assert next_task(contributor, text_project).json()["id"] == item.pk  # mine again
    again = answer(contributor, item.pk, {"label": "negative"}).json()
    Annotation.objects.filter(pk=again["id"]).update(
        created_at=timezone.now() - timedelta(seconds=settings.UNDO_SECONDS + 1)
    )
    late = contributor.api.delete(f"/api/v1/annotations/{again['id']}")
    assert late.status_code == 409 and "withdrawn for" in late.json()["detail"]


def test_a_wrong_gold_answer_cannot_be_withdrawn_once_its_feedback_showed_the_answer(
    contributor: Contributor, project: Project
) -> None:
    """Withdrawn, it would be answered again with the answer the feedback gave, and the
    contributor's gold record (probation, the spammer check, the gold bonus) would stay perfect."""
    [gold] = items(project, 1, prefix="gold")
    Item.objects.filter(pk=gold.pk).update(gold_label="negative")
    next_task(contributor, project)
    wrong = answer(contributor, gold.pk, {"label": "positive"}).json()
    assert wrong["feedback"]["expected"] == {"label": "negative"}
    refused = contributor.api.delete(f"/api/v1/annotations/{wrong['id']}")
    assert refused.status_code == 409
    assert "feedback has shown the expected answer" in refused.json()["detail"]
    assert list(Annotation.objects.values_list("label", flat=True)) == ["positive"]


def test_a_right_gold_answer_can_be_withdrawn_like_any_answer(
    contributor: Contributor, project: Project
) -> None:
    """Refusing it would tell the contributor the item was gold, which a right answer doesn't."""
    [gold] = items(project, 1, prefix="gold")
    Item.objects.filter(pk=gold.pk).update(gold_label="negative")
    next_task(contributor, project)
    right = answer(contributor, gold.pk, {"label": "negative"}).json()
    assert contributor.api.delete(f"/api/v1/annotations/{right['id']}").status_code == 204
    assert not Annotation.objects.exists()


def test_undo_is_refused_once_the_item_is_decided_and_for_someone_elses_answer(
    contributor: Contributor, second_contributor: Contributor, project: Project
) -> None:
    [item] = items(project, 1)
    next_task(contributor, project)
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        given = answer(contributor, item.pk, {"label": "positive"}).json()
    item.refresh_from_db()
    assert item.status == Item.Status.ACCEPTED
    assert second_contributor.api.delete(f"/api/v1/annotations/{given['id']}").status_code == 404
    decided = contributor.api.delete(f"/api/v1/annotations/{given['id']}")
    assert decided.status_code == 409 and "already decided" in decided.json()["detail"]


def test_the_page_reports_when_it_showed_the_item_and_progress_counts_what_is_left(
    contributor: Contributor, text_project: Project
) -> None:
    first, _ = items(text_project, 2)
    task = next_task(contributor, text_project).json()
    assert contributor.api.post(f"/api/v1/items/{task['id']}/shown").status_code == 204
    lease = Assignment.objects.get(item_id=task["id"], user=contributor.user)
    assert lease.shown_at is not None
    progress = contributor.api.get(f"/api/v1/projects/{text_project.pk}/progress").json()
    assert progress == {"left": 2, "open": 2, "labeled_today": 0, "labeled": 0}
    answer(contributor, task["id"], {"label": "positive"})
    progress = contributor.api.get(f"/api/v1/projects/{text_project.pk}/progress").json()
    assert progress["left"] == 1 and progress["labeled_today"] == 1
    other = [i for i in Item.objects.all() if i.pk != task["id"]][0]
    assert contributor.api.post(f"/api/v1/items/{other.pk}/shown").status_code == 409


def test_a_preloaded_lease_gets_its_full_time_from_when_it_is_shown_once_and_never_revived(
    contributor: Contributor, project: Project
) -> None:
    first, second = items(project, 2)
    on_screen = next_task(contributor, project).json()
    preloaded = next_task(contributor, project, after=on_screen["id"]).json()
    lease = Assignment.objects.get(item_id=preloaded["id"], user=contributor.user)
    # The contributor looked at the first item for most of the lease's time.
    almost_over = timezone.now() + timedelta(seconds=20)
    Assignment.objects.filter(pk=lease.pk).update(expires_at=almost_over)
    assert contributor.api.post(f"/api/v1/items/{preloaded['id']}/shown").status_code == 204
    lease.refresh_from_db()
    left = (lease.expires_at - timezone.now()).total_seconds()
    assert left == pytest.approx(project.lease_seconds, abs=5)
    # Reported again (a reload, a second tab): no longer hold on the place.
    renewed = lease.expires_at
    assert contributor.api.post(f"/api/v1/items/{preloaded['id']}/shown").status_code == 204
    lease.refresh_from_db()
    assert lease.expires_at == renewed
    # A lease that already lapsed is not revived: its place may be someone else's by now.
    lapsed = timezone.now() - timedelta(seconds=1)
    Assignment.objects.filter(item_id=on_screen["id"], user=contributor.user).update(
        expires_at=lapsed
    )
    assert contributor.api.post(f"/api/v1/items/{on_screen['id']}/shown").status_code == 409
    assert (
        Assignment.objects.get(item_id=on_screen["id"], user=contributor.user).expires_at == lapsed
    )


def test_showing_a_lease_never_shortens_it(contributor: Contributor, project: Project) -> None:
    [item] = items(project, 1)
    next_task(contributor, project)
    later = timezone.now() + timedelta(seconds=project.lease_seconds * 2)
    Assignment.objects.filter(item=item, user=contributor.user).update(expires_at=later)
    assert contributor.api.post(f"/api/v1/items/{item.pk}/shown").status_code == 204
    assert Assignment.objects.get(item=item, user=contributor.user).expires_at == later
