from django.urls import path

from moderation import apis

urlpatterns = [
    path("moderation/flags/", apis.FlagListApi.as_view(), name="moderation-flags"),
]
