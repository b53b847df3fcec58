"""Form fields for untrusted input in Django's own forms (the admin's)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput

from config.parsers import json_nesting_depth


class BoundedJSONField(forms.JSONField):
    """Django's JSON form field with the API's nesting bound (``API_JSON_MAX_DEPTH``).

    Django catches only ``JSONDecodeError``: a value nested past the recursion limit raised
    ``RecursionError`` out of the form (a 500 on the admin's project form, whose ``classes`` is
    JSON), both when it was cleaned and when the form was shown again with its errors.
    """

    def _too_deep(self, value: Any) -> int | None:
        if not isinstance(value, str):
            return None
        depth = json_nesting_depth(value)
        return depth if depth > settings.API_JSON_MAX_DEPTH else None

    def to_python(self, value: Any) -> Any:
        depth = None if self.disabled else self._too_deep(value)
        if depth is not None:
            raise ValidationError(
                f"JSON nested {depth} levels deep; the limit is {settings.API_JSON_MAX_DEPTH}.",
                code="invalid",
            )
        return super().to_python(value)

    def bound_data(self, data: Any, initial: Any) -> Any:
        if not self.disabled and self._too_deep(data) is not None:
            return InvalidJSONInput(data)
        return super().bound_data(data, initial)
