"""State changes of the labeling pipeline. One function per use case; each owns its transaction."""

from labeling.services.decisions import (
    Decision,
    item_decide,
    item_override,
    items_review_stalled,
    majority_vote,
    model_vote,
    project_refit,
)
from labeling.services.items import (
    AnnotationError,
    DuplicateItemError,
    ItemUnavailable,
    QuotaExceeded,
    annotation_create,
    annotation_submit,
    assignment_record,
    item_create_image,
    item_create_text,
    item_gold_set,
    item_gold_validate,
    item_skip,
)

__all__ = [
    "AnnotationError",
    "Decision",
    "DuplicateItemError",
    "QuotaExceeded",
    "ItemUnavailable",
    "annotation_create",
    "annotation_submit",
    "assignment_record",
    "item_create_image",
    "item_create_text",
    "item_decide",
    "item_gold_set",
    "item_gold_validate",
    "item_override",
    "item_skip",
    "items_review_stalled",
    "majority_vote",
    "model_vote",
    "project_refit",
]
