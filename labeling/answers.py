"""The answers contributors give, per project task: validation, and when an answer agrees with a
decision.

| task | body of ``POST /api/v1/items/{id}/annotations/`` | agrees with the decision when |
|---|---|---|
| ``classify`` | ``{"label": "cat"}`` | the same class |
| ``multilabel`` | ``{"labels": ["cat", "outdoor"]}`` (zero or more) | Jaccard similarity >= the project's ``agreement_threshold`` |
| ``boxes`` | ``{"boxes": [{"x", "y", "w", "h", "label"}]}``: pixels of the stored image, origin top-left | matched boxes (same class, by IoU) score mean IoU >= ``agreement_threshold``, an unmatched box counting 0 |
| ``spans`` | ``{"spans": [{"start", "end", "label"}]}``: character offsets, end exclusive | character-level F1 (same class) >= ``agreement_threshold`` |
| ``pairwise`` | ``{"choice": "a"}`` or ``"b"`` | the same choice |

Two empty answers (no labels, no boxes, no spans) agree. ``AnswerError`` names the field at
fault; the API answers it with a 400.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_BOXES = 200
# The length of the label columns (an answer's, a decision's, a gold answer's): a summary longer
# than this is cut to fit, with a digest of the whole so that different answers stay different.
LABEL_MAX = 100
MAX_SPANS = 500
TASK_FIELDS = {
    "classify": "label",
    "multilabel": "labels",
    "boxes": "boxes",
    "spans": "spans",
    "pairwise": "choice",
}
PAIRWISE_CHOICES = ("a", "b")
# The tasks whose answer is one class, so that a gold answer (one class name) can state it.
GOLD_TASKS = ("classify", "pairwise")


class AnswerError(ValueError):
    """An answer that doesn't fit its project; ``field`` is where (``"boxes[2].w"``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Answer:
    """A validated answer: ``label`` is its class (classify), ``"a"``/``"b"`` (pairwise) or a
    short summary; ``value`` is its canonical body, stored and compared."""

    label: str
    value: dict[str, Any]


@dataclass(frozen=True)
class AnswerContext:
    """What an answer is checked against: the project's task and classes, and the item."""

    task: str
    classes: Sequence[str]
    spans_may_overlap: bool = False
    text: str = ""
    width: int | None = None
    height: int | None = None


def brief(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to about ``limit`` characters, for an error message that names what
    was sent (a 2 MB string must not come back whole in the 400)."""
    shown = (
        repr(value) if not isinstance(value, str) or len(value) <= limit else repr(value[:limit])
    )
    return shown if len(shown) <= limit + 2 else f"{shown[:limit]}…"


def _class(value: object, field: str, classes: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in classes:
        raise AnswerError(
            field, f"unknown class {brief(value)}: choose one of {', '.join(classes)}"
        )
    return value


def _number(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AnswerError(field, "must be a finite number")
    try:
        number = float(value)  # an int past float's range (1e400 written out) overflows
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise AnswerError(field, "must be a finite number")
    return number


def _integer(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise AnswerError(field, "must be an integer")
    return value


def _list(body: Mapping[str, Any], field: str, limit: int) -> list[Any]:
    value = body[field]
    if not isinstance(value, list):
        raise AnswerError(field, "must be a list")
    if len(value) > limit:
        raise AnswerError(field, f"at most {limit} per answer, got {len(value)}")
    return value


def _object(value: object, field: str, keys: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise AnswerError(field, "must be an object")
    missing = keys - set(value)
    if missing:
        raise AnswerError(f"{field}.{sorted(missing)[0]}", "is required")
    extra = set(value) - keys
    if extra:
        raise AnswerError(f"{field}.{sorted(extra)[0]}", "is not a field of this answer")
    return value


def validate_answer(context: AnswerContext, body: object) -> Answer:
    """Check an answer body against its project and item. Raises ``AnswerError``."""
    expected = TASK_FIELDS[context.task]
    if not isinstance(body, Mapping):
        raise AnswerError(expected, "send a JSON object")
    if expected not in body:
        given = next((f for f in TASK_FIELDS.values() if f in body), None)
        detail = (
            f" (this is a {context.task} project; {given!r} is for another task)" if given else ""
        )
        raise AnswerError(expected, f"is required{detail}")
    extra = sorted(set(body) - {expected})
    if extra:
        raise AnswerError(extra[0][:80], f"is not part of a {context.task} answer")
    if context.task == "classify":
        label = _class(body["label"], "label", context.classes)
        return Answer(label=label, value={"label": label})
    if context.task == "pairwise":
        choice = body["choice"]
        if choice not in PAIRWISE_CHOICES:
            raise AnswerError("choice", 'must be "a" or "b"')
        return Answer(label=str(choice), value={"choice": choice})
    if context.task == "multilabel":
        values = _list(body, "labels", len(context.classes))
        labels = [_class(v, f"labels[{i}]", context.classes) for i, v in enumerate(values)]
        if len(set(labels)) != len(labels):
            raise AnswerError("labels", "lists a class twice")
        ordered = [c for c in context.classes if c in labels]
        return Answer(label=summary("multilabel", {"labels": ordered}), value={"labels": ordered})
    if context.task == "boxes":
        return _boxes(context, body)
    return _spans(context, body)


def _boxes(context: AnswerContext, body: Mapping[str, Any]) -> Answer:
    if context.width is None or context.height is None:
        raise AnswerError("boxes", "boxes are drawn on images; this item has none")
    boxes = []
    for i, raw in enumerate(_list(body, "boxes", MAX_BOXES)):
        field = f"boxes[{i}]"
        box = _object(raw, field, {"x", "y", "w", "h", "label"})
        x, y = _number(box["x"], f"{field}.x"), _number(box["y"], f"{field}.y")
        w, h = _number(box["w"], f"{field}.w"), _number(box["h"], f"{field}.h")
        if w < 1 or h < 1:
            # Smaller boxes are no box: their area rounds to 0, so two of them never agree.
            raise AnswerError(
                f"{field}.{'w' if w < 1 else 'h'}", "a box is at least 1 pixel wide and high"
            )
        if x < 0 or y < 0 or x + w > context.width or y + h > context.height:
            raise AnswerError(
                field,
                f"is outside the {context.width} x {context.height} image "
                "(x, y from the top-left corner, in pixels)",
            )
        label = _class(box["label"], f"{field}.label", context.classes)
        boxes.append({"x": x, "y": y, "w": w, "h": h, "label": label})
    return Answer(label=summary("boxes", {"boxes": boxes}), value={"boxes": boxes})


def _spans(context: AnswerContext, body: Mapping[str, Any]) -> Answer:
    if not context.text:
        raise AnswerError("spans", "spans are marked in texts; this item has none")
    length = len(context.text)
    spans: list[dict[str, Any]] = []
    for i, raw in enumerate(_list(body, "spans", MAX_SPANS)):
        field = f"spans[{i}]"
        span = _object(raw, field, {"start", "end", "label"})
        start, end = (
            _integer(span["start"], f"{field}.start"),
            _integer(span["end"], f"{field}.end"),
        )
        if start < 0 or end > length:
            raise AnswerError(field, f"is outside the text (0 to {length} characters)")
        if end <= start:
            raise AnswerError(field, "is empty or inverted: end must be after start")
        label = _class(span["label"], f"{field}.label", context.classes)
        spans.append({"start": start, "end": end, "label": label})
    spans.sort(key=lambda s: (int(s["start"]), int(s["end"]), str(s["label"])))
    if not context.spans_may_overlap:
        for before, after in zip(spans, spans[1:], strict=False):
            if int(after["start"]) < int(before["end"]):
                raise AnswerError(
                    "spans",
                    f"[{before['start']}, {before['end']}) and [{after['start']}, "
                    f"{after['end']}) overlap; this project doesn't allow overlapping spans",
                )
    return Answer(label=summary("spans", {"spans": spans}), value={"spans": spans})


def summary(task: str, value: Mapping[str, Any]) -> str:
    """An answer's short label: its class, choice, classes, or how many boxes or spans."""
    if task == "multilabel":
        return _fit(",".join(value.get("labels", [])))
    if task in ("boxes", "spans"):
        n = len(value.get(task, []))
        noun = {"boxes": ("box", "boxes"), "spans": ("span", "spans")}[task]
        return f"{n} {noun[0] if n == 1 else noun[1]}"
    return str(value.get(TASK_FIELDS[task], ""))


def _fit(text: str) -> str:
    """``text`` if it fits :data:`LABEL_MAX`; else its start, an ellipsis and 8 hex digits of
    its SHA-256 (nine classes of 20 characters, all chosen, made a 188-character summary, which
    PostgreSQL refused with a 500)."""
    if len(text) <= LABEL_MAX:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{text[: LABEL_MAX - 9]}\u2026{digest}"


# --- Agreement with a decision ----------------------------------------------------------------


def iou(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Intersection over union of two ``{"x", "y", "w", "h"}`` boxes."""
    left, top = max(a["x"], b["x"]), max(a["y"], b["y"])
    right = min(a["x"] + a["w"], b["x"] + b["w"])
    bottom = min(a["y"] + a["h"], b["y"] + b["h"])
    inter = max(0.0, right - left) * max(0.0, bottom - top)
    union = a["w"] * a["h"] + b["w"] * b["h"] - inter
    return inter / union if union > 0 else 0.0


def box_set_score(mine: Sequence[Mapping[str, Any]], decided: Sequence[Mapping[str, Any]]) -> float:
    """How well a set of boxes matches the decided set: boxes of the same class are matched
    greedily by IoU (best pair first), and the matched IoUs are averaged over the larger set
    (an extra or missing box counts 0). Two empty sets score 1."""
    if not mine and not decided:
        return 1.0
    pairs = sorted(
        (
            (iou(a, b), i, j)
            for i, a in enumerate(mine)
            for j, b in enumerate(decided)
            if a["label"] == b["label"]
        ),
        reverse=True,
    )
    used_a: set[int] = set()
    used_b: set[int] = set()
    total = 0.0
    for overlap, i, j in pairs:
        if overlap <= 0 or i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        total += overlap
    return total / max(len(mine), len(decided))


def span_set_score(
    mine: Sequence[Mapping[str, Any]], decided: Sequence[Mapping[str, Any]]
) -> float:
    """Character-level F1 between two sets of labeled spans. Two empty sets score 1."""

    def marks(spans: Sequence[Mapping[str, Any]]) -> set[tuple[int, str]]:
        return {(p, s["label"]) for s in spans for p in range(s["start"], s["end"])}

    a, b = marks(mine), marks(decided)
    if not a and not b:
        return 1.0
    return 2 * len(a & b) / (len(a) + len(b))


def label_set_score(mine: Sequence[str], decided: Sequence[str]) -> float:
    """Jaccard similarity of two sets of classes. Two empty sets score 1."""
    a, b = set(mine), set(decided)
    return 1.0 if not a and not b else len(a & b) / len(a | b)


def agreement_score(task: str, mine: Mapping[str, Any], decided: Mapping[str, Any]) -> float:
    """How much an answer's value agrees with the decided value, 0..1."""
    if task == "multilabel":
        return label_set_score(mine.get("labels", []), decided.get("labels", []))
    if task == "boxes":
        return box_set_score(mine.get("boxes", []), decided.get("boxes", []))
    if task == "spans":
        return span_set_score(mine.get("spans", []), decided.get("spans", []))
    field = TASK_FIELDS[task]
    return 1.0 if mine.get(field) == decided.get(field) else 0.0


def agrees(
    task: str, mine: Mapping[str, Any], decided: Mapping[str, Any], threshold: float
) -> bool:
    """Whether an answer agrees with the decision (``threshold`` for the graded tasks)."""
    return agreement_score(task, mine, decided) >= (
        threshold if task in ("multilabel", "boxes", "spans") else 1.0
    )
