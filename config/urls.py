"""The composition root: wires the adapters' URLs; nothing else imports an adapter."""

import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponseBase
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from api_rest import urls as rest_urls
from config import views


def api_docs(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """The schema and documentation pages, 404 while API_DOCS_ENABLED is off (read per request)."""

    @functools.wraps(view)
    def docs_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not settings.API_DOCS_ENABLED:
            raise Http404
        return view(request, *args, **kwargs)

    return docs_view


# The APIs first, the busiest routes first: Django tries the patterns in order, so a request to an
# API resolves without trying the pages' patterns.
urlpatterns: list[URLPattern | URLResolver] = [path(rest_urls.PREFIX, include(rest_urls))]

if settings.GRAPHQL_ENABLED:
    from api_graphql import PATH as GRAPHQL_PATH
    from api_graphql.schema import schema
    from api_graphql.views import GraphQLView

    urlpatterns.append(path(GRAPHQL_PATH, GraphQLView.as_view(schema=schema), name="graphql"))

urlpatterns += [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("health", views.health, name="health"),
    path("admin/", admin.site.urls),
    path("api/schema/", api_docs(SpectacularAPIView.as_view()), name="schema"),
    # The split view serves Swagger UI's start-up script as a file (?script): the CSP allows no inline script.
    path("api/docs/", api_docs(SpectacularSwaggerSplitView.as_view(url_name="schema")), name="swagger-ui"),
    path("api/redoc/", api_docs(SpectacularRedocView.as_view(url_name="schema")), name="redoc"),
    path("api/redoc/redoc.standalone.js", api_docs(views.redoc_bundle), name="redoc-bundle"),
    path("api-auth/", include("rest_framework.urls")),  # log in/out links of the browsable API
]

if settings.METRICS_ENABLED:
    urlpatterns.append(path("metrics", views.metrics, name="metrics"))

handler400 = "config.views.bad_request"
handler403 = "config.views.permission_denied"
handler404 = "config.views.not_found"
handler500 = "config.views.server_error"
