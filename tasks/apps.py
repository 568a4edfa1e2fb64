from django.apps import AppConfig
from django.db.backends.signals import connection_created


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Tasks"

    def ready(self) -> None:
        from tasks.sqlite import register_functions

        connection_created.connect(register_functions, dispatch_uid="tasks.sqlite_functions")
