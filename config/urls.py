"""The composition root: wires the adapters' URLs; nothing else imports an adapter."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from config import views
from observability.views import metrics_view

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("health", views.health, name="health"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("api_rest.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("api-auth/", include("rest_framework.urls")),  # log in/out links of the browsable API
]

if settings.METRICS_ENABLED:
    urlpatterns.append(path("metrics", metrics_view, name="metrics"))

if settings.GRAPHQL_ENABLED:
    from api_graphql.schema import schema
    from api_graphql.views import GraphQLView

    urlpatterns.append(path("graphql/", GraphQLView.as_view(schema=schema), name="graphql"))

handler400 = "config.views.bad_request"
handler403 = "config.views.permission_denied"
handler404 = "config.views.not_found"
handler500 = "config.views.server_error"
