from django.apps import AppConfig
from django.db.backends.signals import connection_created


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Tasks"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import pre_delete

        from tasks.services import tasks_of_a_deleted_owner
        from tasks.sqlite import register_functions

        connection_created.connect(register_functions, dispatch_uid="tasks.sqlite_functions")
        # A user's tasks go with the user, past task_delete: their events and cache entries too.
        pre_delete.connect(tasks_of_a_deleted_owner, sender=get_user_model(), dispatch_uid="tasks.deleted_owner")
