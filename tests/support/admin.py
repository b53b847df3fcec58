"""Driving Django admin's change forms as a moderator's browser would."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any


def _value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "on" if value else None
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return str(value)


def change_form_data(page: Any, **changes: Any) -> dict[str, Any]:
    """The POST data a browser sends from an admin change page, with ``changes`` applied.

    Includes every editable field of the form and of its inline formsets (with their management
    forms); read-only fields are not in the form, so whatever ``changes`` names that isn't a field
    is sent too, as a tampering client would.
    """
    data: dict[str, Any] = {}
    form = page.context["adminform"].form
    for bound in form:
        if bound.field.disabled:
            continue
        data[bound.html_name] = _value(bound.value())
    for inline in page.context.get("inline_admin_formsets", []):
        formset = inline.formset
        for bound in formset.management_form:
            data[bound.html_name] = _value(bound.value())
        for subform in formset.forms:
            for bound in subform:
                data[bound.html_name] = _value(bound.value())
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


class _HiddenInputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "input" and named.get("type") == "hidden" and named.get("name"):
            self.fields.append((str(named["name"]), named.get("value") or ""))


def confirmation_form_data(page: Any, **changes: Any) -> dict[str, Any]:
    """The POST data a browser sends from an action's confirmation page (its hidden inputs, as
    rendered), with ``changes`` applied (``apply``, ``reason``)."""
    parser = _HiddenInputs()
    parser.feed(page.content.decode())
    data: dict[str, Any] = {}
    for name, value in parser.fields:
        if name != "csrfmiddlewaretoken":
            data.setdefault(name, []).append(value)
    data.update(changes)
    return data
