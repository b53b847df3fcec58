"""A dataset's records as buyers get them, in one shape for the API, the streams and every export
format: filters, who decided, and one timestamp format.

Rows are read as tuples (``values_list``), never as model instances: an export of 100,000
records builds no ``Item``. Timestamps are ISO 8601 in UTC with a ``Z`` and microseconds,
``2030-01-01T00:00:00.000000Z``, in JSON, JSON Lines, CSV and every other format.
"""

from __future__ import annotations

import json
import math
import re
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, time
from typing import Any

from django.db import connection
from django.db.models import F, FilteredRelation, Func, Q, QuerySet, TextField, Value
from django.db.models.functions import Cast, Coalesce
from django.utils.dateparse import parse_date, parse_datetime

from labeling.models import Item, Project

DECIDED_BY = ("crowd", "moderator")
FILTERS = ("min_confidence", "label", "decided_after", "min_labels", "decided_by")
#: Asks an incremental sync (records and the streamed JSON Lines) for tombstones too.
INCLUDE_WITHDRAWN = "include_withdrawn"
BOOLEANS = {"true": True, "false": False}
#: The largest ``min_labels`` (six digits: no int() of a 5,000-digit string).
MIN_LABELS_MAX = 999_999


def iso_utc(value: datetime | str | None) -> str | None:
    """``2030-01-01T12:00:00.000000Z``: the one timestamp format of every export. Takes a
    datetime, or a timestamp as ``UtcText`` read it (already in that format; elsewhere than
    SQLite and PostgreSQL, the column's own text: naive means UTC)."""
    if value is None:
        return None
    if isinstance(value, str):
        if len(value) == 27 and value[10] == "T" and value[26] == "Z":  # UtcText's
            return value
        value = datetime.fromisoformat(value)
    if value.tzinfo is None or not value.utcoffset():
        text = value.isoformat(timespec="microseconds")
        return (text[:-6] if value.tzinfo is not None else text) + "Z"
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


class FilterError(ValueError):
    """A malformed record filter; ``field`` names the query parameter."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class RecordFilters:
    """Which accepted records to return. Every field is optional; all given must hold."""

    min_confidence: float | None = None
    label: str | None = None
    decided_after: datetime | None = None
    min_labels: int | None = None
    decided_by: str | None = None
    #: Besides the records, tombstones of the records withdrawn after ``decided_after``
    #: (``sync_queryset``); never stored with a background export, which has none.
    include_withdrawn: bool = False

    def as_json(self) -> dict[str, object]:
        data = {k: v for k, v in asdict(self).items() if v is not None}
        data.pop("include_withdrawn")
        if self.decided_after is not None:
            data["decided_after"] = iso_utc(self.decided_after)
        return data


def _single(params: Mapping[str, Any], name: str) -> str | None:
    getlist = getattr(params, "getlist", None)
    values = getlist(name) if getlist is not None else [params[name]] if name in params else []
    if not values:
        return None
    if len(values) > 1:
        raise FilterError(name, "give it once")
    return str(values[0])


def _parse_datetime(raw: str) -> datetime:
    # An unencoded "+02:00" in a URL arrives as " 02:00": read it as the offset it was.
    raw = re.sub(r"(T\d\d:\d\d(?::\d\d(?:\.\d+)?)?) (\d\d:?\d\d)$", r"\1+\2", raw)
    value = parse_datetime(raw) if "T" in raw or " " in raw else None
    if value is None:
        day = parse_date(raw)
        if day is None:
            raise ValueError(raw)
        value = datetime.combine(day, time.min)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # documented: no offset means UTC
    # In UTC now: a time whose UTC is outside datetime's range (0001-01-01T00:00:00+14:00)
    # raises OverflowError here, a bad filter, instead of when the query is built.
    return value.astimezone(UTC)


def parse_filters(
    params: Mapping[str, Any],
    project: Project,
    *,
    allowed: tuple[str, ...] = (),
    tombstones: bool = False,
) -> RecordFilters:
    """Read the record filters from query parameters (or a JSON body) for ``project``;
    ``tombstones``: whether the caller can return tombstones (``include_withdrawn``).

    Raises ``FilterError`` naming the parameter: a malformed value, a label that is not one of
    the project's, a parameter repeated, a parameter that is neither a filter nor in
    ``allowed`` (a typo such as ``min_confidance`` must not return every record), or
    ``include_withdrawn`` that is not ``true``/``false``, is given without ``decided_after`` (a
    tombstone is news only since a cursor), or where there are no tombstones.
    """
    for name in params:
        if name == INCLUDE_WITHDRAWN and not tombstones:
            raise FilterError(
                name,
                "background exports are snapshots of the records accepted now and have no "
                "tombstones: sync deletions with records/ or the streamed JSON Lines export",
            )
        if name not in FILTERS and name not in allowed and name != INCLUDE_WITHDRAWN:
            known = ", ".join([*FILTERS, *([INCLUDE_WITHDRAWN] if tombstones else []), *allowed])
            raise FilterError(name, f"unknown parameter; use {known}")
    values: dict[str, Any] = {}
    raw = _single(params, "min_confidence")
    if raw is not None:
        try:
            if not raw.isascii():  # float() reads other scripts' digits ("０.5")
                raise ValueError(raw)
            number = float(raw)
        except ValueError:
            raise FilterError("min_confidence", f"{raw!r} is not a number") from None
        if not math.isfinite(number) or not 0.0 <= number <= 1.0:
            raise FilterError("min_confidence", f"{raw!r} is not a probability from 0 to 1")
        values["min_confidence"] = number
    raw = _single(params, "label")
    if raw is not None:
        classes = list(project.classes or [])
        if raw not in classes:
            raise FilterError("label", f"{raw!r} is not a class of this dataset: {classes}")
        values["label"] = raw
    raw = _single(params, "decided_after")
    if raw is not None:
        try:
            if not raw.isascii():  # Django's date patterns read other scripts' digits
                raise ValueError(raw)
            values["decided_after"] = _parse_datetime(raw.strip())
        except (ValueError, OverflowError):
            raise FilterError(
                "decided_after",
                f"{raw!r} is not an ISO 8601 date or date-time (2030-01-01, 2030-01-01T12:00:00Z)",
            ) from None
    raw = _single(params, "min_labels")
    if raw is not None:
        if not re.fullmatch(r"\+?[0-9]{1,6}", raw.strip()):
            raise FilterError(
                "min_labels", f"{raw!r} is not a whole number from 1 to {MIN_LABELS_MAX}"
            )
        number = int(raw)
        if number < 1:
            raise FilterError("min_labels", "must be at least 1")
        values["min_labels"] = number
    raw = _single(params, "decided_by")
    if raw is not None:
        if raw not in DECIDED_BY:
            raise FilterError("decided_by", f"{raw!r}: use crowd or moderator")
        values["decided_by"] = raw
    raw = _single(params, INCLUDE_WITHDRAWN)
    if raw is not None:
        flag = BOOLEANS.get(raw.strip().lower())
        if flag is None:
            raise FilterError(
                INCLUDE_WITHDRAWN, f"{raw[:40]!r} is not a boolean: use true or false"
            )
        if flag and "decided_after" not in values:
            raise FilterError(
                INCLUDE_WITHDRAWN,
                "needs decided_after, the cursor of an incremental sync: tombstones are the "
                "records withdrawn after it (a full read has none)",
            )
        values["include_withdrawn"] = flag
    return RecordFilters(**values)


def filters_from_json(data: Mapping[str, Any], project: Project) -> RecordFilters:
    """Filters stored with an export (``RecordFilters.as_json``), read back."""
    return parse_filters({k: str(v) for k, v in data.items()}, project)


def _json_string(label: str) -> str:
    """A regex matching ``label`` as a JSON string in the decision's JSON text, as either
    backend writes it: escaped to ASCII (SQLite keeps Django's ``json.dumps``) or not
    (PostgreSQL's ``jsonb`` text prints the characters themselves)."""
    forms = sorted({json.dumps(label), json.dumps(label, ensure_ascii=False)})
    return "(" + "|".join(re.escape(form) for form in forms) + ")"


def _label_condition(project: Project, label: str) -> Q:
    task = project.task
    if task in (Project.Task.CLASSIFY, Project.Task.PAIRWISE):
        return Q(decided_label=label)
    if task == Project.Task.MULTILABEL:
        # An element of the decision's {"labels": [...]} (its summary label may be cut short,
        # and a class name may hold a comma), or a moderator's one-class decision.
        return Q(decided_label=label) | Q(
            decided_value_text__regex=r"[\[,] ?" + _json_string(label) + r" ?[,\]]"
        )
    # Boxes and spans: records with at least one box or span of that class. The JSON text is
    # matched (SQLite has no JSON containment lookup); the spacing differs between backends.
    return Q(decided_value_text__regex=r'"label": ?' + _json_string(label))


#: The columns read for every record, in order (``record_rows`` turns them into a record).
COLUMNS = (
    "id",
    "text",
    "text_b",
    "image",
    "image_b",
    "width",
    "height",
    "decided_label",
    "decided_value",
    "agreement",
    "confidence",
    "decided_at",
    "decided_by_raw",
    "method_raw",
    "content_sha256",
    "contributor_wallet",
    "label_count",
    "licence",
    "created_at",
)


def _records(project: Project, filters: RecordFilters) -> tuple[QuerySet[Item], Q]:
    """The items of ``project`` annotated as records are read, and the condition of a record
    (non-gold) that passes ``filters``."""
    # The item's current decision, joined once by the unique (item, version) index.
    items = Item.objects.filter(project=project).annotate(
        current=FilteredRelation(
            "decisions", condition=Q(decisions__version=F("decision_version"))
        ),
        decided_by_raw=Coalesce(F("current__decided_by"), Value("crowd")),
        method_raw=F("current__method"),
        contributor_wallet=F("contributor__wallet_address"),
    )
    record = Q(status=Item.Status.ACCEPTED, gold_label="")
    if filters.min_confidence is not None:
        record &= Q(confidence__gte=filters.min_confidence)
    if filters.label is not None:
        if project.task in (Project.Task.MULTILABEL, Project.Task.BOXES, Project.Task.SPANS):
            items = items.annotate(decided_value_text=Cast("decided_value", TextField()))
        record &= _label_condition(project, filters.label)
    if filters.decided_after is not None:
        record &= Q(decided_at__gt=filters.decided_after)
    if filters.min_labels is not None:
        record &= Q(label_count__gte=filters.min_labels)
    if filters.decided_by is not None:
        record &= Q(decided_by_raw=filters.decided_by)
    return items, record


def records_queryset(project: Project, filters: RecordFilters) -> QuerySet[Item]:
    """The accepted, non-gold items of ``project`` that pass ``filters``, by id, annotated with
    who decided them (``labeling.Decision``; items decided before decisions were recorded count
    as the crowd's) and the method of that decision."""
    items, record = _records(project, filters)
    return items.filter(record).order_by("id")


def sync_queryset(project: Project, filters: RecordFilters) -> QuerySet[Item]:
    """``records_queryset``, and with ``include_withdrawn`` the tombstones in the same id order:
    the items not accepted now whose record was withdrawn after ``decided_after``
    (``Item.withdrawn_at``, stamped by ``labeling.services.decisions._withdraw``), gold ones
    too: a reopened item is open, and may be made gold after its record was sold. One query
    and one id order for both, so a page of ``page_size`` rows holds records and tombstones
    together, and a stream reads one cursor. The other filters select records only: a
    tombstone is sent for any record withdrawn after the cursor (deleting an id a buyer never
    kept is a no-op; its old label, confidence or decider are no longer known)."""
    items, record = _records(project, filters)
    if not filters.include_withdrawn or filters.decided_after is None:
        return items.filter(record).order_by("id")
    withdrawn = Q(withdrawn_at__gt=filters.decided_after) & ~Q(status=Item.Status.ACCEPTED)
    return items.filter(record | withdrawn).order_by("id")


class UtcText(Func):
    """A timestamp printed by the database in the one export format,
    ``2030-01-01T12:00:00.000000Z`` (UTC): no per-value parsing or formatting in Python.
    Elsewhere than PostgreSQL and SQLite it is the column as text, which ``iso_utc`` reformats."""

    output_field = TextField()
    template = "CAST(%(expressions)s AS text)"

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            template="""to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')""",
            **extra,
        )

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # Django stores UTC as "YYYY-MM-DD HH:MM:SS[.ffffff]": no fraction on a whole second.
        return self.as_sql(
            compiler,
            connection,
            template="replace(%(expressions)s, ' ', 'T') || "
            "CASE WHEN length(%(expressions)s) = 19 THEN '.000000Z' ELSE 'Z' END",
            **extra,
        )


#: Columns ``record_values`` reads as text, by the names it reads them as: the decision's JSON
#: as the database prints it, the timestamps already formatted (PostgreSQL's driver parsed every
#: JSON value and timestamp, and Python reformatted each).
_AS_TEXT: dict[str, tuple[str, Callable[[str], Func]]] = {
    "decided_value": ("value_as_text", lambda column: Cast(column, TextField())),
    "decided_at": ("decided_at_as_text", UtcText),
    "created_at": ("created_at_as_text", UtcText),
    "withdrawn_at": ("withdrawn_at_as_text", UtcText),
}


#: The columns ``sync_queryset`` rows have after ``COLUMNS``: what tells a tombstone.
TOMBSTONE_COLUMNS = ("status", "withdrawn_at", "withdrawn_reason")


def record_values(queryset: QuerySet[Item], *, tombstones: bool = False) -> QuerySet[Any]:
    """``queryset`` as tuples of ``COLUMNS`` (and ``TOMBSTONE_COLUMNS`` with ``tombstones``):
    what ``record_rows`` (``sync_rows``) reads."""
    columns = (*COLUMNS, *(TOMBSTONE_COLUMNS if tombstones else ()))
    return queryset.annotate(
        **{alias: text(column) for column, (alias, text) in _AS_TEXT.items()}
    ).values_list(*(_AS_TEXT[column][0] if column in _AS_TEXT else column for column in columns))


def record_tuples(
    queryset: QuerySet[Item], chunk: int = 2000, *, tombstones: bool = False
) -> Iterator[tuple[Any, ...]]:
    """The tuples of ``record_values(queryset)`` as the database returns them, ``chunk`` at a
    time from a server-side cursor (PostgreSQL): no per-value conversion by the ORM, which cost
    more than the query (timestamps and JSON are read as text by ``record_rows``)."""
    sql, params = record_values(queryset, tombstones=tombstones).query.sql_with_params()
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(chunk):
            yield from rows


def decided_value(task: str, label: str, value: Any) -> tuple[dict[str, Any], str]:
    """The decision in its task's shape (``labeling.answers``), and as compact JSON text.
    Classify and pairwise decisions are rebuilt from the label (items decided before values
    were stored have none); ``value`` may be the database's JSON text or the parsed object."""
    if task == Project.Task.CLASSIFY:
        return {"label": label}, '{"label":' + _encode(label) + "}"
    if task == Project.Task.PAIRWISE:
        return {"choice": label}, '{"choice":' + _encode(label) + "}"
    parsed = json.loads(value) if isinstance(value, str) else value
    if not isinstance(parsed, dict) or not parsed:
        return {}, "{}"
    return parsed, json.dumps(parsed, ensure_ascii=False, separators=(",", ":"))


_encode = json.JSONEncoder(ensure_ascii=False).encode


ContentUrl = Callable[[int, str], str]


def content_url_from(template: str) -> ContentUrl:
    """``content_url(item_id, side)`` from the absolute URL of item 0's content (kept with an
    export, so a worker builds the URLs the buyer's request would have)."""
    head, tail = template.rsplit("/0/", 1)

    def url(item_id: int, side: str) -> str:
        return f"{head}/{item_id}/{tail}" + ("?side=b" if side == "b" else "")

    return url


def _spans_with_text(spans: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """Each span with the characters it marks, so a buyer needn't slice the text."""
    return [{**span, "text": text[span["start"] : span["end"]]} for span in spans]


def record_rows(
    rows: Iterator[tuple[Any, ...]], project: Project, content_url: ContentUrl
) -> Iterator[dict[str, Any]]:
    """Records as flat dicts, from ``record_values`` tuples; ``content_url(item_id, side)`` is
    the URL of an item's image (``side`` "a" or "b"), fetchable with the buyer's key only."""
    task = project.task
    spans = task == Project.Task.SPANS
    default_method = project.consensus_method
    default_licence = project.licence
    # Classify and pairwise values depend on the label alone: encoded once per label.
    by_label: dict[str, tuple[dict[str, Any], str]] = {}
    rebuilt = task in (Project.Task.CLASSIFY, Project.Task.PAIRWISE)
    for (
        pk,
        text,
        text_b,
        image,
        image_b,
        width,
        height,
        label,
        value,
        agreement,
        confidence,
        decided_at,
        decided_by,
        method,
        sha256,
        contributor,
        label_count,
        licence,
        created_at,
    ) in rows:
        moderator = decided_by == "moderator"
        if rebuilt:
            if (cached := by_label.get(label)) is None:
                cached = by_label[label] = decided_value(task, label, value)
            value_object, value_json = dict(cached[0]), cached[1]
        else:
            value_object, value_json = decided_value(task, label, value)
        if spans and text and value_object.get("spans"):
            value_object = {**value_object, "spans": _spans_with_text(value_object["spans"], text)}
            value_json = json.dumps(value_object, ensure_ascii=False, separators=(",", ":"))
        yield {
            "id": pk,
            "task": task,
            "text": text or None,
            "text_b": text_b or None,
            "image_url": content_url(pk, "a") if image else None,
            "image_b_url": content_url(pk, "b") if image_b else None,
            "width": width,
            "height": height,
            "label": label,
            "value": value_object,
            "value_json": value_json,
            "agreement": agreement,
            "confidence": confidence,
            "decided_at": iso_utc(decided_at),
            "decided_by": "moderator" if moderator else "crowd",
            # A moderator's decision used no consensus method (it used to say dawid_skene).
            "method": None if moderator else (method or default_method),
            "sha256": sha256,
            "contributor": contributor,
            "labels": label_count,
            "licence": licence or default_licence,
            "created_at": iso_utc(created_at),
            "image_path": image or None,
            "image_b_path": image_b or None,
        }


def tombstone(pk: int, withdrawn_at: datetime | str | None, reason: str) -> dict[str, Any]:
    """A record that left the dataset after a sync's cursor: the buyer deletes ``id``."""
    return {
        "id": pk,
        "withdrawn": True,
        "withdrawn_at": iso_utc(withdrawn_at),
        "reason": reason or Item.WithdrawnReason.REOPENED.value,
    }


def sync_rows(
    rows: Iterator[tuple[Any, ...]], project: Project, content_url: ContentUrl
) -> Iterator[dict[str, Any]]:
    """Records (``record_rows``) and tombstones (``tombstone``, with ``"withdrawn": True``) in
    the order of ``rows``: tuples of ``COLUMNS`` and ``TOMBSTONE_COLUMNS``
    (``record_values(..., tombstones=True)``)."""
    width = len(COLUMNS)
    accepted = Item.Status.ACCEPTED.value
    held: deque[dict[str, Any]] = deque()

    def records() -> Iterator[tuple[Any, ...]]:
        # record_rows pulls the next record's tuple through here: the tombstones before it
        # are held, and sent before that record.
        for row in rows:
            status, withdrawn_at, reason = row[width:]
            if status == accepted:
                yield row[:width]
            else:
                held.append(tombstone(row[0], withdrawn_at, reason))

    for record in record_rows(records(), project, content_url):
        while held:
            yield held.popleft()
        yield record
    yield from held


#: The columns of flat exports (JSON Lines, CSV, Parquet), in order.
EXPORT_COLUMNS = (
    "id",
    "text",
    "text_b",
    "image_url",
    "image_b_url",
    "width",
    "height",
    "label",
    "agreement",
    "confidence",
    "decided_at",
    "decided_by",
    "method",
    "sha256",
    "contributor",
    "labels",
    "licence",
    "created_at",
    "value",
)


def export_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A record as flat exports write it (no storage paths)."""
    return {name: row[name] for name in EXPORT_COLUMNS}
