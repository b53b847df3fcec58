from django.urls import path

from rewards import apis

urlpatterns = [
    path("me/rewards/", apis.MyRewardsApi.as_view(), name="my-rewards"),
]
