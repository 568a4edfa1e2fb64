from django.urls import path

from api_rest import apis

app_name = "api_rest"
PREFIX = "api/v1/"  # where config/urls.py mounts these routes

# The busiest routes first: Django tries them in order. No two of them match the same path (a task id
# is a UUID, never "me" or "events").
urlpatterns = [
    path("tasks/<uuid:task_id>", apis.TaskDetailApi.as_view(), name="task-detail"),
    path("tasks", apis.TaskCollectionApi.as_view(), name="task-collection"),
    path("tasks/me", apis.TaskMineApi.as_view(), name="task-mine"),
    path("tasks/events", apis.TaskEventsApi.as_view(), name="task-events"),
    path("auth/token", apis.TokenObtainApi.as_view(), name="token-obtain"),
    path("auth/token/refresh", apis.TokenRefreshApi.as_view(), name="token-refresh"),
    path("auth/token/revoke", apis.TokenRevokeApi.as_view(), name="token-revoke"),
    path("cache/stats", apis.CacheStatsApi.as_view(), name="cache-stats"),
]
