from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Identity and API keys"

    def ready(self) -> None:
        from core import signals  # noqa: F401  (connects the default-role handler)
        from core.cache import connect_close_caches

        connect_close_caches()
