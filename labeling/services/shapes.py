"""Online decisions for the tasks whose answers are sets: multi-label, boxes and spans.

- **Multi-label**: each class is its own yes/no question. Every answer votes yes or no on every
  class, weighted by its labeler's estimated accuracy (``CONSENSUS_DEFAULT_ACCURACY`` for one the
  model hasn't seen): a class's posterior is the logistic of the summed log-odds. The item is
  decided once every class is sure either way (its posterior or its complement at the project's
  acceptance threshold); the decided set is the classes above one half.
- **Boxes** and **spans**: the answers are fused by the consensus library (``aggregate_boxes``:
  IoU matching, a strict majority keeps a box, median coordinates; ``aggregate_spans``:
  character-level voting). The item is decided once at least ``GEOMETRIC_MAJORITY`` of its answers
  agree with the fused answer (``labeling.answers.agrees`` at the project's agreement threshold);
  its confidence is that share. There is no posterior for a set of shapes: a clear majority of
  people who drew the same thing is the evidence.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from django.conf import settings

from labeling.answers import agrees
from labeling.consensus import aggregate_boxes, aggregate_spans
from labeling.models import Project, WorkerSkill

GEOMETRIC_MAJORITY = 2 / 3

Answer = tuple[int, str, dict[str, Any]]  # (labeler id, label, value)


def _share_agreeing(project: Project, answers: list[Answer], decided: dict[str, Any]) -> float:
    if not answers:
        return 0.0
    agreeing = sum(
        agrees(project.task, value, decided, project.agreement_threshold) for _, _, value in answers
    )
    return agreeing / len(answers)


def multilabel_vote(project: Project, answers: list[Answer]) -> tuple[dict[str, Any], float, float]:
    """``(decided value, confidence, agreement)`` of a multi-label item."""
    accuracy = dict(
        WorkerSkill.objects.filter(
            project=project, user_id__in=[user for user, _, _ in answers]
        ).values_list("user_id", "accuracy")
    )
    default = settings.CONSENSUS_DEFAULT_ACCURACY
    weights = [
        math.log(a / (1 - a))
        for a in (min(max(accuracy.get(user, default), 0.51), 0.99) for user, _, _ in answers)
    ]
    decided: list[str] = []
    confidence = 1.0
    for name in project.classes:
        log_odds = sum(
            w if name in value.get("labels", []) else -w
            for w, (_, _, value) in zip(weights, answers, strict=True)
        )
        probability = 1 / (1 + math.exp(-log_odds))
        if probability >= 0.5:
            decided.append(name)
        confidence = min(confidence, max(probability, 1 - probability))
    value = {"labels": decided}
    return value, confidence, _share_agreeing(project, answers, value)


def box_vote(project: Project, answers: list[Answer]) -> tuple[dict[str, Any], float, float]:
    """``(decided value, confidence, agreement)`` of a boxes item."""
    index = {name: i for i, name in enumerate(project.classes)}
    rows = [
        (worker, box)
        for worker, (_, _, value) in enumerate(answers)
        for box in value.get("boxes", [])
    ]
    boxes: list[dict[str, Any]] = []
    if rows:
        result = aggregate_boxes(
            np.zeros(len(rows), dtype=np.int64),
            np.array([worker for worker, _ in rows], dtype=np.int64),
            np.array(
                [[b["x"], b["y"], b["x"] + b["w"], b["y"] + b["h"]] for _, b in rows],
                dtype=np.float64,
            ),
            np.array([index[b["label"]] for _, b in rows], dtype=np.int64),
            iou_threshold=max(min(project.agreement_threshold, 1.0), 0.05),
            n_annotators=np.array([len(answers)], dtype=np.int64),
        )
        for (x1, y1, x2, y2), label in zip(result.boxes, result.labels, strict=True):
            boxes.append(
                {
                    "x": round(float(x1), 1),
                    "y": round(float(y1), 1),
                    "w": round(float(x2 - x1), 1),
                    "h": round(float(y2 - y1), 1),
                    "label": project.classes[int(label)],
                }
            )
    value = {"boxes": boxes}
    share = _share_agreeing(project, answers, value)
    return value, share, share


def _flat(spans: list[dict[str, Any]], group: list[str]) -> list[dict[str, Any]]:
    """One labeler's spans of ``group``, overlapping same-class spans merged (the vote counts each
    character once per labeler)."""
    merged: list[dict[str, Any]] = []
    for span in sorted((s for s in spans if s["label"] in group), key=lambda s: s["start"]):
        last = merged[-1] if merged else None
        if last is not None and last["label"] == span["label"] and span["start"] <= last["end"]:
            last["end"] = max(last["end"], span["end"])
        else:
            merged.append(dict(span))
    return merged


def span_vote(
    project: Project, text: str, answers: list[Answer]
) -> tuple[dict[str, Any], float, float]:
    """``(decided value, confidence, agreement)`` of a spans item (characters are the tokens).

    Where spans may overlap, each class is voted on by itself."""
    index = {name: i for i, name in enumerate(project.classes)}
    groups = (
        [list(project.classes)] if not project.spans_may_overlap else [[c] for c in project.classes]
    )
    spans: list[dict[str, Any]] = []
    for group in groups:
        rows = [
            (worker, span)
            for worker, (_, _, value) in enumerate(answers)
            for span in _flat(value.get("spans", []), group)
        ]
        if not rows:
            continue
        result = aggregate_spans(
            np.array([len(text)], dtype=np.int64),
            np.zeros(len(rows), dtype=np.int64),
            np.array([worker for worker, _ in rows], dtype=np.int64),
            np.array([s["start"] for _, s in rows], dtype=np.int64),
            np.array([s["end"] for _, s in rows], dtype=np.int64),
            np.array([index[s["label"]] for _, s in rows], dtype=np.int64),
            n_annotators=np.array([len(answers)], dtype=np.int64),
        )
        for start, end, label in zip(result.starts, result.ends, result.labels, strict=True):
            spans.append(
                {"start": int(start), "end": int(end), "label": project.classes[int(label)]}
            )
    spans.sort(key=lambda s: (s["start"], s["end"], s["label"]))
    value = {"spans": spans}
    share = _share_agreeing(project, answers, value)
    return value, share, share
