from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "observability"

    def ready(self) -> None:
        from observability import tracing

        tracing.configure()  # in every process, before it opens a database or Redis connection
