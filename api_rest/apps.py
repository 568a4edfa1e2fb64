from django.apps import AppConfig


class ApiRestConfig(AppConfig):
    name = "api_rest"
    verbose_name = "REST API"

    def ready(self) -> None:
        from api_rest import schema  # noqa: F401  (registers the OpenAPI auth extensions)
