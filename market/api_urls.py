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
    path(
        "datasets/<int:dataset_id>/exports/",
        apis.DatasetExportsApi.as_view(),
        name="dataset-exports",
    ),
    path("exports/", apis.MyExportsApi.as_view(), name="my-exports"),
    path("exports/<int:export_id>/", apis.ExportDetailApi.as_view(), name="export-detail"),
    path(
        "exports/<int:export_id>/download",
        apis.ExportDownloadApi.as_view(),
        name="export-download",
    ),
    path(
        "exports/<int:export_id>/croissant",
        apis.ExportCroissantApi.as_view(),
        name="export-croissant",
    ),
    path("exports/<int:export_id>/card", apis.ExportCardApi.as_view(), name="export-card"),
]
