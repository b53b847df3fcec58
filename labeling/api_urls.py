from django.urls import path

from labeling import apis

urlpatterns = [
    path("projects/", apis.ProjectListApi.as_view(), name="project-list"),
    path("projects/<int:project_id>/items/", apis.ItemCreateApi.as_view(), name="item-create"),
    path("projects/<int:project_id>/next-task/", apis.NextTaskApi.as_view(), name="next-task"),
    path(
        "items/<int:item_id>/annotations/",
        apis.AnnotationCreateApi.as_view(),
        name="annotation-create",
    ),
    path("items/<int:item_id>/skip", apis.ItemSkipApi.as_view(), name="item-skip"),
    path("items/<int:item_id>/shown", apis.ItemShownApi.as_view(), name="item-shown"),
    path(
        "annotations/<int:annotation_id>",
        apis.AnnotationWithdrawApi.as_view(),
        name="annotation-withdraw",
    ),
    path("projects/<int:project_id>/progress", apis.ProgressApi.as_view(), name="progress"),
    path("me/labels/", apis.MyLabelsApi.as_view(), name="my-labels"),
    path("me/uploads/", apis.MyUploadsApi.as_view(), name="my-uploads"),
    path("items/<int:item_id>/content", apis.ItemContentApi.as_view(), name="item-content"),
    path("me/", apis.MyProfileApi.as_view(), name="my-profile"),
]
