"""Every admin add, change and delete lands in the audit trail, in the transaction of the change.

``AuditedModelAdmin`` is the base of every ModelAdmin Crowdmint registers (a test walks the
registry). Django calls ``log_addition``/``log_change`` inside the atomic block of the change
form, and ``delete_model`` inside the delete view's; ``delete_queryset`` (the bulk delete action,
which Django runs without a transaction) gets one here. Change and add forms carry an optional
"reason" field, recorded with the entry. Services that already audit their own change (bans,
gold answers, reward policies...) still write theirs: this entry says which admin form did it.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import flatten_fieldsets
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models, router, transaction
from django.db.models import QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from accounts.audit import audit_record
from accounts.models import User
from config.forms import BoundedJSONField
from config.ids import MAX_ID, parse_id

REASON_FIELD = "audit_reason"
_M = TypeVar("_M", bound=models.Model)


def _actor(request: HttpRequest) -> User | None:
    user = request.user
    return user if isinstance(user, User) else None


def _reason(request: HttpRequest) -> str:
    return str(request.POST.get(REASON_FIELD, "")).strip()[:500]


def _changed_fields(message: Any) -> list[str]:
    """The field names of Django's change message (``[{"changed": {"fields": [...]}}]``)."""
    names: list[str] = []
    if isinstance(message, list):
        for part in message:
            for kind in ("changed", "added", "deleted"):
                body = part.get(kind) if isinstance(part, dict) else None
                if isinstance(body, dict):
                    names += [str(f) for f in body.get("fields", [])]
                    if "name" in body:
                        names.append(f"{kind} {body['name']}: {body.get('object', '')}")
    return names


def _is_pk(model: type[models.Model], value: str) -> bool:
    """Whether ``value`` (from a form) can be one of ``model``'s primary keys."""
    field = model._meta.pk
    if isinstance(field, models.AutoField | models.BigAutoField | models.IntegerField):
        return parse_id(value) is not None
    try:
        field.to_python(value)
    except ValidationError:
        return False
    return True


def _filtered_field(model: type[models.Model], key: str) -> Any:
    """The field a changelist filter ``key`` (``project__id__exact``) compares its value with:
    the last field on its path, a relation read as the key it compares (its target's)."""
    opts, field = model._meta, None
    for part in key.split(LOOKUP_SEP):
        try:
            field = opts.get_field(opts.pk.name if part == "pk" else part)
        except FieldDoesNotExist:
            break
        if field.is_relation and field.related_model is not None:
            opts = field.related_model._meta
    if field is not None and field.is_relation and field.related_model is not None:
        return getattr(field, "target_field", None) or field.related_model._meta.pk
    return field


def _integer_past_64_bits(model: type[models.Model], params: Any) -> bool:
    """Whether a changelist filter compares an integer field with a number past 64 bits: SQLite
    raised OverflowError running the page's query (a 500), where a filter on one value too
    large for the column finds nothing on PostgreSQL."""
    for key, values in params.lists():
        if not isinstance(_filtered_field(model, key), models.IntegerField):
            continue
        for part in (p.strip() for value in values for p in str(value).split(",")):
            try:
                number = int(part)
            except ValueError:
                continue
            if not -MAX_ID - 1 <= number <= MAX_ID:
                return True
    return False


class AuditedModelAdmin(admin.ModelAdmin[_M]):
    """A ModelAdmin whose adds, changes and deletes are audited (who, what, when, why)."""

    # False where the change form edits nothing (every field read-only, decisions are actions).
    audit_reason_on_forms = True
    # JSON typed into a form is bounded like an API body (a deep value was a RecursionError).
    formfield_overrides = {models.JSONField: {"form_class": BoundedJSONField}}

    def response_action(  # type: ignore[override]  # django-stubs adds an argument 5.2 lacks
        self, request: HttpRequest, queryset: QuerySet[Any]
    ) -> HttpResponse | None:
        """An action on a selection that isn't this model's ids (``_selected_action=abc``, or a
        number past 64 bits) is refused with a message: Django filtered by it and raised (a 500
        on every changelist)."""
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if not all(_is_pk(self.model, value) for value in selected):
            self.message_user(
                request, "The selection isn't a list of ids: nothing was done.", messages.ERROR
            )
            return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset)

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        # Django shows its "invalid filter" page for this, as for a filter on no field.
        if _integer_past_64_bits(self.model, request.GET):
            raise IncorrectLookupParameters("a filter's number is past 64 bits")
        return super().get_changelist_instance(request)

    def _may_write(self, request: HttpRequest, obj: Any) -> bool:
        if not self.audit_reason_on_forms:
            return False
        if obj is None:
            return self.has_add_permission(request)
        return self.has_change_permission(request, obj)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if self._may_write(request, obj):
            base = kwargs.get("form", self.form)
            kwargs["form"] = type(
                f"Audited{base.__name__}",
                (base,),
                {
                    REASON_FIELD: forms.CharField(
                        label="Reason",
                        required=False,
                        max_length=500,
                        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
                        help_text="Why (recorded in the audit trail with your name).",
                    ),
                    "__module__": __name__,
                },
            )
        return super().get_form(request, obj, change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = list(super().get_fieldsets(request, obj))
        if self._may_write(request, obj) and REASON_FIELD not in flatten_fieldsets(fieldsets):
            fieldsets.append(("Audit", {"fields": [REASON_FIELD]}))
        return fieldsets

    def audit_details(self, obj: Any) -> dict[str, Any]:
        """What else this model's entries record about ``obj`` (JSON), beside the reason."""
        return {}

    def _audit(self, request: HttpRequest, obj: models.Model, verb: str, **details: Any) -> None:
        audit_record(
            actor=_actor(request),
            action=f"admin.{verb}",
            target=obj,
            details={
                "model": obj._meta.label_lower,
                "object": str(obj)[:200],
                "reason": _reason(request),
                **self.audit_details(obj),
                **details,
            },
        )

    def construct_change_message(
        self, request: HttpRequest, form: Any, formsets: Any, add: bool = False
    ) -> Any:
        # The changed fields by name, for the trail (the change message has their labels).
        request._audit_fields = [n for n in form.changed_data if n != REASON_FIELD]  # type: ignore[attr-defined]
        return super().construct_change_message(request, form, formsets, add)

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        entry = super().log_addition(request, obj, message)
        self._audit(request, obj, "add")
        return entry

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        entry = super().log_change(request, obj, message)
        fields = getattr(request, "_audit_fields", None)
        self._audit(request, obj, "change", fields=fields or _changed_fields(message))
        return entry

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with transaction.atomic(using=router.db_for_write(self.model)):
            self._audit(request, obj, "delete")
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        with transaction.atomic(using=router.db_for_write(self.model)):
            for obj in queryset:
                self._audit(request, obj, "delete")
            super().delete_queryset(request, queryset)


class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        max_length=500,
        help_text="Recorded in the audit trail with your name.",
    )


def reason_or_confirmation(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    *,
    effect: str,
    targets: list[str],
    submit: str,
    notes: list[str] | None = None,
    credits: list[str] | None = None,
    credits_anyone: bool = True,
) -> tuple[str | None, TemplateResponse | None]:
    """For a bulk admin action: the reason from its confirmed form, or first the confirmation
    page (what it will do, to what, who it credits: say nothing about credits for an action that
    can't credit anyone, ``credits_anyone=False``) asking for it."""
    form = ReasonForm(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        return str(form.cleaned_data["reason"]), None
    opts = model_admin.model._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "title": submit,
        "effect": effect,
        "targets": targets,
        "credits": credits or [],
        "credits_irrelevant": not credits_anyone,
        "notes": notes or [],
        "form": form,
        "hidden": changelist_action_fields(request),
        "submit": f"Yes, {submit.lower()}",
        "back_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
        "opts": opts,
    }
    return None, TemplateResponse(request, "admin/crowdmint/confirm.html", context)


def changelist_action_fields(request: HttpRequest) -> list[tuple[str, str]]:
    """The changelist's action form as posted, for the confirmation page to post again: the
    action (each action bar's, with ``index`` naming the one used), the ticked ids, and
    ``select_across`` ("select all N"). Without ``select_across`` the confirmed action ran on the
    ticked rows of one page only, fewer than the page confirming it listed."""
    fields = [("action", value) for value in request.POST.getlist("action")]
    fields += [
        (helpers.ACTION_CHECKBOX_NAME, pk)
        for pk in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
    ]
    for name in ("index", "select_across"):
        if name in request.POST:
            fields.append((name, str(request.POST[name])))
    return fields
