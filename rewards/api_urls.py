from django.urls import path

from rewards import apis

urlpatterns = [
    path("me/rewards/", apis.MyRewardsApi.as_view(), name="my-rewards"),
    path("me/receipts/", apis.MyReceiptListApi.as_view(), name="my-receipts"),
    path("me/receipts/<int:entry_id>", apis.MyReceiptApi.as_view(), name="my-receipt"),
]
