"""The service's URLs plus one baseline route: a plain DRF view over the same task table.

The service's patterns are taken as they are, not include()d under "": an include is one more
level of resolving (~25,000 instructions per request) that the service's own ROOT_URLCONF does not
have, and the bench must measure what production runs.
"""

from django.urls import path

from bench.baseline import BaselineTaskDetail
from config.urls import handler400, handler403, handler404, handler500
from config.urls import urlpatterns as service_urlpatterns

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

urlpatterns = [
    *service_urlpatterns,
    path("bench/baseline/tasks/<uuid:pk>", BaselineTaskDetail.as_view(), name="bench-baseline-task"),
]
