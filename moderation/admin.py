"""The back office's frame (Crowdmint's header, the dashboard on the admin home) and the flags
queue: flags with their evidence, confirmed (optionally with a ban) or dismissed through the
moderation services, each after a confirmation page asking for a reason."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from accounts.admin_audit import AuditedModelAdmin, reason_or_confirmation
from accounts.models import User
from moderation import services as moderation_services
from moderation.models import Flag

admin.site.site_header = "Crowdmint back office"
admin.site.site_title = "Crowdmint"
admin.site.index_title = "Dashboard and moderation"
admin.site.index_template = "admin/crowdmint/index.html"


def evidence_html(value: Any, depth: int = 0) -> SafeString:
    """A flag's evidence (JSON) as nested lists a person can read; every value escaped."""
    if isinstance(value, dict) and depth < 4:
        return format_html(
            '<ul class="crowdmint-evidence">{}</ul>',
            format_html_join(
                "",
                "<li>{}: {}</li>",
                ((str(k).replace("_", " "), evidence_html(v, depth + 1)) for k, v in value.items()),
            ),
        )
    if isinstance(value, list) and depth < 4:
        if all(not isinstance(v, dict | list) for v in value):
            return format_html("{}", ", ".join(_scalar(v) for v in value[:50]))
        return format_html(
            '<ul class="crowdmint-evidence">{}</ul>',
            format_html_join("", "<li>{}</li>", ((evidence_html(v, depth + 1),) for v in value)),
        )
    return format_html("{}", _scalar(value))


def _moderator(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)  # admin_view let only signed-in staff through
    return user


def _scalar(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


@admin.register(Flag)
class FlagAdmin(AuditedModelAdmin[Flag]):
    list_display = [
        "id",
        "kind",
        "who",
        "project",
        "item_display",
        "state",
        "evidence_short",
        "created_at",
    ]
    list_filter = ["state", "kind"]
    search_fields = ["user__wallet_address", "user__username"]
    list_select_related = ["user", "project", "item__project"]
    readonly_fields = [
        "kind",
        "who",
        "project",
        "item_display",
        "evidence_readable",
        "state",
        "created_at",
        "resolved_by",
        "resolved_at",
        "resolution_note",
        "how_to_decide",
    ]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return list(self.readonly_fields)

    actions = ["confirm_flags", "confirm_and_ban", "dismiss_flags"]
    audit_reason_on_forms = False  # nothing to edit: flags are decided by the actions

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # A flag is read here and decided from the list's actions (each asks for a reason).
        context = {"show_save": False, "show_save_and_continue": False, **(extra_context or {})}
        return super().change_view(request, object_id, form_url, context)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # flags are raised by the checks, with their evidence

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # dismissed instead: the trail keeps what was seen

    @admin.display(description="contributor", ordering="user")
    def who(self, flag: Flag) -> str:
        if flag.user is None:
            return "—"
        url = reverse("admin:accounts_user_report", args=[flag.user.pk])
        return format_html('<a href="{}">{}</a>', url, str(flag.user))

    @admin.display(description="item", ordering="item")
    def item_display(self, flag: Flag) -> str:
        if flag.item is None:
            return "—"
        url = reverse("admin:labeling_item_change", args=[flag.item.pk])
        return format_html('<a href="{}">{} #{}</a>', url, flag.item.project.name, flag.item.pk)

    @admin.display(description="evidence")
    def evidence_short(self, flag: Flag) -> str:
        text = "; ".join(
            f"{str(k).replace('_', ' ')}: {_scalar(v) if not isinstance(v, dict | list) else '…'}"
            for k, v in (flag.evidence or {}).items()
        )
        return text[:160] + ("…" if len(text) > 160 else "")

    @admin.display(description="decide")
    def how_to_decide(self, flag: Flag) -> str:
        if flag.state != Flag.State.OPEN:
            return "—"
        url = reverse("admin:moderation_flag_changelist")
        return format_html(
            'Select it in <a href="{}?state__exact=open">the open flags</a> and choose confirm, '
            "confirm and ban, or dismiss: each asks for a reason first.",
            url,
        )

    @admin.display(description="evidence")
    def evidence_readable(self, flag: Flag) -> SafeString:
        return evidence_html(flag.evidence)

    def _decide(
        self,
        request: HttpRequest,
        queryset: QuerySet[Flag],
        *,
        effect: str,
        submit: str,
        apply: Any,
    ) -> TemplateResponse | None:
        """The confirmation page, then (with a reason) ``apply(flag, reason)`` for each open flag."""
        flags = list(queryset.filter(state=Flag.State.OPEN).select_related("user"))
        reason, page = reason_or_confirmation(
            self,
            request,
            effect=f"{effect} {len(flags)} open flag(s).",
            targets=[f"#{f.pk} {f.get_kind_display()}: {f.user or '—'}" for f in flags],
            submit=submit,
            notes=[] if flags else ["None of the selected flags is open: nothing to do."],
        )
        if page is not None:
            return page
        done = 0
        for flag in flags:
            try:
                apply(flag, reason)
            except Exception as exc:  # a flag resolved meanwhile: say so, go on
                messages.warning(request, f"Flag {flag.pk}: {exc}")
                continue
            done += 1
        messages.success(request, f"{submit}: {done} flag(s).")
        return None

    @admin.action(description="Confirm the selected flags…", permissions=["change"])
    def confirm_flags(self, request: HttpRequest, queryset: QuerySet[Flag]) -> Any:
        return self._decide(
            request,
            queryset,
            effect="confirm (the contributor's unpaid rewards stay held and, where the project "
            "holds flagged answers, their answers stay out of consensus)",
            submit="Confirm",
            apply=lambda flag, reason: moderation_services.flag_confirm(
                flag=flag, moderator=_moderator(request), reason=reason, ban=False
            ),
        )

    @admin.action(
        description="Confirm the selected flags and ban their contributors…", permissions=["change"]
    )
    def confirm_and_ban(self, request: HttpRequest, queryset: QuerySet[Flag]) -> Any:
        return self._decide(
            request,
            queryset,
            effect="ban the contributors (their answers leave consensus everywhere and their "
            "unpaid items are decided again; nothing paid is touched) and confirm",
            submit="Confirm and ban",
            apply=lambda flag, reason: moderation_services.flag_confirm(
                flag=flag, moderator=_moderator(request), reason=reason, ban=True
            ),
        )

    @admin.action(description="Dismiss the selected flags…", permissions=["change"])
    def dismiss_flags(self, request: HttpRequest, queryset: QuerySet[Flag]) -> Any:
        return self._decide(
            request,
            queryset,
            effect="dismiss (the contributor's rewards and answers count again and their items "
            "are decided again)",
            submit="Dismiss",
            apply=lambda flag, reason: moderation_services.flag_dismiss(
                flag=flag, moderator=_moderator(request), reason=reason
            ),
        )
