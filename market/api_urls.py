from django.urls import path

from market import apis

urlpatterns = [
    path("datasets/", apis.DatasetListApi.as_view(), name="dataset-list"),
    path(
        "datasets/<int:dataset_id>/purchase",
        apis.DatasetPurchaseApi.as_view(),
        name="dataset-purchase",
    ),
    path(
        "datasets/<int:dataset_id>/records/",
        apis.DatasetRecordsApi.as_view(),
        name="dataset-records",
    ),
    path(
        "datasets/<int:dataset_id>/export",
        apis.DatasetExportStreamApi.as_view(),
        name="dataset-export",
    ),
]
