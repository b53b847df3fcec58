"""Readers of import files: Label Studio JSON tasks, CSV and JSON Lines, one row at a time.

Each reader yields ``(row_number, Row | RowError)``; a row it can't read is reported, never
fatal. Rows carry the item's content (``text``, ``text_b`` for pairs, ``image``/``image_b`` as
paths relative to the images folder) and, optionally, an answer in the project's task shape
(``labeling.answers``), from a Label Studio annotation or the ``label``/``labels``/``boxes``/
``spans``/``choice`` field of a CSV or JSONL row. The Label Studio JSON array is decoded one task
at a time, so a file of any size is read in constant memory.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import IO, Any

ANSWER_FIELDS = ("label", "labels", "boxes", "spans", "choice")
# Python's JSON parser recurses per level of nesting: past the interpreter's recursion limit
# (config.recursion) a row is refused, like any other it can't read.
_TOO_DEEP = "nested too deeply to read"


@dataclass
class Row:
    text: str | None = None
    text_b: str | None = None
    image: str | None = None
    image_b: str | None = None
    answer: dict[str, Any] | None = None
    #: Label Studio boxes are in percent of the image: converted once its size is known.
    percent_boxes: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class RowError:
    message: str


Parsed = Iterator[tuple[int, Row | RowError]]


class FileRefused(Exception):
    """The whole file is refused before any row is read (nothing is written): a CSV or Label
    Studio file that is not UTF-8."""


def allow_csv_fields_of(characters: int) -> None:
    """Let the ``csv`` module read cells of up to ``characters`` (never lowering the limit).

    Its default, 131,072 characters, raises ``csv.Error`` at a longer cell, and the reader can't
    go on (a quoted cell may span lines): every row after it was lost. The limit is the process's
    (``csv.field_size_limit``), so it is raised once, when the app loads (``MarketConfig``), to
    the size of the largest upload: such a cell is read, and its row rejected by the same checks
    as any (a text past ``UPLOAD_MAX_TEXT_CHARS``). Only a longer cell ends the reading.
    """
    if csv.field_size_limit() < characters:
        csv.field_size_limit(characters)


def check_utf8(binary: IO[bytes], block_size: int = 1 << 20) -> None:
    """Raise ``FileRefused`` unless all of ``binary`` (from where it is) is UTF-8; it is left
    where it was. A file that can't be sought isn't checked.

    CSV and Label Studio files are decoded a block at a time: a byte that is not UTF-8 lost the
    rows decoded with it in its block, and the rest of the file, after an import of only part of
    it. The file is checked first, so it is imported whole or not at all; the refusal names the
    line and byte to fix. (JSON Lines is decoded line by line: a line that is not UTF-8 is a
    rejected row, the others are imported.)
    """
    if not binary.seekable():
        return
    start = binary.tell()
    pending = b""
    offset = 0  # of pending's first byte, from start
    lines = 1
    try:
        while True:
            block = binary.read(block_size)
            data = pending + block
            try:
                _, used = codecs.utf_8_decode(data, "strict", not block)
            except UnicodeDecodeError as exc:
                line = lines + data.count(b"\n", 0, exc.start)
                raise FileRefused(
                    f"the file is not UTF-8: byte 0x{data[exc.start]:02x} on line {line} (byte "
                    f"{offset + exc.start + 1} of the file) is not a UTF-8 character; save the "
                    "file as UTF-8 and import it again (nothing was imported)"
                ) from None
            lines += data.count(b"\n", 0, used)
            offset += used
            pending = data[used:]
            if not block:
                return
    finally:
        binary.seek(start)


@contextmanager
def _text_stream(binary: IO[bytes]) -> Iterator[IO[str]]:
    """``binary`` as UTF-8 text (a BOM skipped), its lines split at ``\\n``, ``\\r`` and
    ``\\r\\n`` only, untranslated: the CSV module's record separators (``newline=""``).

    Not ``codecs.getreader``: its lines also end at U+2028, U+0085, a form feed..., which
    ``csv.writer`` leaves unquoted, so one of our own CSV rows read back as several. The
    caller's file is left open (detached, not closed with the wrapper).
    """
    stream = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="strict", newline="")
    try:
        yield stream
    finally:
        with suppress(ValueError):  # the caller closed its file first
            stream.detach()


def _answer_from_fields(data: dict[str, Any], parse_json: bool) -> dict[str, Any] | None:
    answer = {k: data[k] for k in ANSWER_FIELDS if data.get(k) not in (None, "")}
    if not answer:
        return None
    if parse_json:  # CSV cells: lists and objects are JSON
        for key in ("labels", "boxes", "spans"):
            if key in answer and isinstance(answer[key], str):
                answer[key] = json.loads(answer[key])
    return answer


def _row_from_fields(data: dict[str, Any], parse_json: bool, answers: bool) -> Row | RowError:
    known = {"text", "text_b", "image", "image_b", *ANSWER_FIELDS}
    try:
        answer = _answer_from_fields(data, parse_json) if answers else None
    except ValueError as exc:
        return RowError(f"an answer field is not valid JSON: {exc}")
    except RecursionError:
        return RowError(_TOO_DEEP)
    row = Row(
        text=data.get("text"),
        text_b=data.get("text_b"),
        image=data.get("image") or None,
        image_b=data.get("image_b") or None,
        answer=answer,
    )
    if row.text is None and row.image is None:
        extra = sorted(set(data) - known)
        hint = f" (found {', '.join(extra)})" if extra else ""
        return RowError(f'a row needs "text" or "image"{hint}')
    return row


def _check_header(names: Sequence[str]) -> None:
    """Raise ``FileRefused`` for a header that is one column holding ``;`` or tabs: a file
    separated by semicolons (a spreadsheet's CSV in many locales) or tabs, which would be one
    rejected row per row. Refused, not sniffed: a guess could split the texts at their own
    commas or semicolons."""
    if "text" in names or "image" in names:
        return
    for separator, name in ((";", "semicolons"), ("\t", "tabs")):
        if any(separator in column for column in names):
            raise FileRefused(
                f"the header {','.join(names)!r} is one column: the file looks separated by "
                f"{name}, and a CSV is read separated by commas; save it with commas and import "
                "it again (nothing was imported)"
            )


def _excel_separator_line(line: str) -> bool:
    """Whether ``line`` is the ``sep=,`` line Excel writes (and reads) before a CSV's header:
    True for a comma, which is skipped; ``FileRefused`` for another separator, as
    ``_check_header`` refuses a header separated by it."""
    if not line.lower().startswith("sep=") or len(line.rstrip("\r\n")) != 5:
        return False
    separator = line[4]
    if separator != ",":
        name = {";": "semicolons", "\t": "tabs"}.get(separator, repr(separator))
        raise FileRefused(
            f"the file's first line {line.rstrip()!r} says it is separated by {name}, and a CSV "
            "is read separated by commas; save it with commas and import it again (nothing was "
            "imported)"
        )
    return True


def read_csv(source: IO[bytes], answers: bool = True) -> Parsed:
    """The CSV's rows, numbered from 1 after the header. Raises ``FileRefused`` (before any row)
    for a file that is not UTF-8 (``check_utf8``) or is separated by semicolons or tabs
    (``_check_header``)."""
    check_utf8(source)
    number = 0
    with _text_stream(source) as text:
        first = text.readline()
        lines: Iterable[str] = (
            text if _excel_separator_line(first) else itertools.chain([first], text)
        )
        reader = csv.DictReader(lines)
        try:
            _check_header(reader.fieldnames or [])
            for number, record in enumerate(reader, start=1):
                if None in record:
                    yield number, RowError("more cells than the header has columns")
                    continue
                fields = {k: v for k, v in record.items() if k}
                yield number, _row_from_fields(fields, True, answers)
        except (UnicodeDecodeError, csv.Error) as exc:
            # The row being read when it failed: the one after the last yielded.
            yield number + 1, RowError(f"the file can't be read from here on: {exc}")


def read_jsonl(source: IO[bytes], answers: bool = True) -> Parsed:
    for number, raw in enumerate(source, start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            data = json.loads(line)
        except (ValueError, UnicodeDecodeError) as exc:
            yield number, RowError(f"not a JSON object: {exc}")
            continue
        except RecursionError:
            yield number, RowError(_TOO_DEEP)
            continue
        if not isinstance(data, dict):
            yield number, RowError("each line must be a JSON object")
            continue
        yield number, _row_from_fields(data, False, answers)


_AFTER_NUMBER = (" ", "\t", "\r", "\n", ",", "]")


class TrailingText(ValueError):
    """Text after the closing ``]`` of the tasks' array (or after a single task object)."""


def _json_array_items(source: IO[bytes], chunk_size: int = 1 << 16) -> Iterator[Any]:
    """The items of a top-level JSON array, decoded one at a time; a top-level object is one
    item (Label Studio imports a file of a single task too).

    An item cut by the end of the buffer fails to parse and is parsed again from its start once
    more is read; each read at least doubles what is buffered, so an item of n bytes is parsed
    O(log n) times, O(n) work in all (a chunk a time re-parsed it once per chunk: quadratic).
    Raises ``ValueError`` for a file that isn't such an array or object, and ``TrailingText``
    for anything but white space after it (a second array, a truncated copy, garbage): the file
    is not the one meant, and its end is not ignored in silence.
    """
    decoder = json.JSONDecoder()
    with _text_stream(source) as stream:
        buffer = ""
        position = 0
        started = single = False
        eof = False

        def more() -> None:
            nonlocal buffer, position, eof
            chunk = stream.read(max(chunk_size, len(buffer) - position))
            eof = not chunk
            buffer = buffer[position:] + chunk
            position = 0

        def rest_is_blank() -> None:
            nonlocal position
            while True:
                while position < len(buffer) and buffer[position] in " \t\r\n":
                    position += 1
                if position < len(buffer):
                    after = "the closing ] of the tasks' array" if not single else "the task"
                    raise TrailingText(f"text after {after}: {buffer[position : position + 40]!r}")
                if eof:
                    return
                more()

        while True:
            separators = " \t\r\n," if started else " \t\r\n"
            while position < len(buffer) and buffer[position] in separators:
                position += 1
            if position >= len(buffer) - 1 and not eof:
                more()
                continue
            if not started:
                if position >= len(buffer):
                    return  # an empty file: no tasks (the import says the file has no rows)
                if buffer[position] not in "[{":
                    raise ValueError(
                        "expected a JSON array of Label Studio tasks (or one task object)"
                    )
                started = True
                single = buffer[position] == "{"
                position += 0 if single else 1
                continue
            if not single and position < len(buffer) and buffer[position] == "]":
                position += 1
                rest_is_blank()
                return
            if position >= len(buffer):
                raise ValueError("the JSON array is not closed")
            try:
                item, end = decoder.raw_decode(buffer, position)
            except json.JSONDecodeError:
                if eof:
                    raise
                more()
                continue
            # A number cut by the buffer's end parses as a shorter one (12|34 as 12, 1|e5 as
            # 1): unless the array's next comma or bracket is there, it may go on.
            if (
                not eof
                and isinstance(item, int | float)
                and buffer[end : end + 1] not in _AFTER_NUMBER
            ):
                more()
                continue
            position = end
            yield item
            if single:
                rest_is_blank()
                return


def _ls_data(data: dict[str, Any]) -> Row | RowError:
    if not isinstance(data, dict):
        return RowError('"data" must be an object')
    for a, b in (("text1", "text2"), ("text", "text_b")):
        if isinstance(data.get(a), str) and isinstance(data.get(b), str):
            return Row(text=data[a], text_b=data[b])
    for a, b in (("image1", "image2"), ("image", "image_b")):
        if isinstance(data.get(a), str) and isinstance(data.get(b), str):
            return Row(image=data[a], image_b=data[b])
    if isinstance(data.get("text"), str):
        return Row(text=data["text"])
    if isinstance(data.get("image"), str):
        return Row(image=data["image"])
    strings = [v for v in data.values() if isinstance(v, str)]
    if len(strings) == 1:  # a config with another name for its one text
        return Row(text=strings[0])
    return RowError('"data" needs a "text" or "image" field')


def _ls_answer(task: dict[str, Any], row: Row) -> RowError | None:
    # Label Studio before 1.0 called a task's annotations "completions".
    listed = task.get("annotations") or task.get("completions") or []
    if not isinstance(listed, list):
        return RowError('"annotations" must be a list')
    annotations = [a for a in listed if isinstance(a, dict) and not a.get("was_cancelled")]
    if not annotations:
        return None
    result = annotations[0].get("result") or []
    if not isinstance(result, list):
        return RowError("an annotation's result must be a list")
    choices: list[str] = []
    boxes: list[dict[str, Any]] = []
    spans: list[dict[str, Any]] = []
    pairwise: str | None = None
    for region in result:
        if isinstance(region, dict) and region.get("type") == "relation":
            continue  # a link between two regions (no value): no task here records one
        if not isinstance(region, dict) or not isinstance(region.get("value"), dict):
            return RowError("each result region needs a value object")
        kind, value = region.get("type"), region["value"]
        rotation = value.get("rotation") if kind == "rectanglelabels" else None
        if rotation not in (None, 0):
            # Its x and y are a corner it turns about: read unrotated, the box would be elsewhere.
            return RowError(
                f"a rotated box (rotation {str(rotation)[:20]}) can't be imported: boxes here "
                "are upright"
            )
        # A region's classes are a list ({"choices": "cat"} would otherwise read as c, a, t).
        classes = (
            value.get(kind) if kind in ("choices", "rectanglelabels", "labels") else None
        ) or []
        if not isinstance(classes, list):
            return RowError(f'"{kind}" in a result region must be a list')
        if kind == "choices":
            choices.extend(classes)
        elif kind == "rectanglelabels":
            for label in classes:
                boxes.append({**value, "label": label})
        elif kind == "labels":
            for label in classes:
                spans.append({"start": value.get("start"), "end": value.get("end"), "label": label})
        elif kind == "pairwise":
            selected = value.get("selected")
            pairwise = "a" if selected == "left" else "b" if selected == "right" else None
        else:
            return RowError(f"result type {kind!r} is not imported")
    if pairwise is not None:
        row.answer = {"choice": pairwise}
    elif boxes:
        row.percent_boxes = boxes
    elif spans:
        row.answer = {"spans": spans}
    elif choices:
        row.answer = {"labels": choices} if len(choices) > 1 else {"label": choices[0]}
    return None


def read_label_studio(source: IO[bytes], answers: bool = True) -> Parsed:
    """The tasks of a Label Studio JSON array, numbered from 1. Raises ``FileRefused`` (before
    any task) for a file that is not UTF-8 (``check_utf8``)."""
    check_utf8(source)
    number = 0
    try:
        for task in _json_array_items(source):
            number += 1
            if not isinstance(task, dict):
                yield number, RowError("each task must be an object")
                continue
            # A task without "data" is its data (Label Studio imports [{"text": "..."}] so).
            row = _ls_data(task.get("data", task))
            if isinstance(row, Row) and answers:
                problem = _ls_answer(task, row)
                if problem is not None:
                    row = problem
            yield number, row
    except TrailingText as exc:
        yield number + 1, RowError(f"{exc}; the tasks before it were read")
    except (ValueError, UnicodeDecodeError) as exc:
        yield number + 1, RowError(f"the file can't be read from here on: {exc}")
    except RecursionError:
        yield number + 1, RowError(f"the file can't be read from here on: {_TOO_DEEP}")


READERS = {"label_studio": read_label_studio, "csv": read_csv, "jsonl": read_jsonl}
