"""The service's URLs plus one baseline route: a plain DRF view over the same task table."""

from django.urls import include, path

from bench.baseline import BaselineTaskDetail
from config.urls import handler400, handler403, handler404, handler500

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

urlpatterns = [
    path("", include("config.urls")),
    path("bench/baseline/tasks/<uuid:pk>", BaselineTaskDetail.as_view(), name="bench-baseline-task"),
]
