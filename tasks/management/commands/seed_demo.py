"""`manage.py seed_demo`: a demo user with a few tasks, for trying the API (idempotent)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from core.auth import actor_from_user
from tasks.models import Task
from tasks.services import task_create

DEMO_TASKS: list[dict[str, Any]] = [
    {"title": "Write the release notes", "priority": "high", "tags": ["docs", "release"], "due_in_days": 2},
    {"title": "Review the open pull requests", "priority": "medium", "status": "in_progress", "tags": ["review"]},
    {"title": "Renew the TLS certificate", "priority": "high", "due_in_days": 10, "tags": ["ops"]},
    {"title": "Plan the team offsite", "priority": "low", "description": "Venue, dates, agenda.", "tags": ["team"]},
    {"title": "Upgrade PostgreSQL to 16", "priority": "medium", "completed": True, "tags": ["ops", "database"]},
]


class Command(BaseCommand):
    help = "Create the demo user (and demo tasks if they have none) and print the credentials."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="demo-password")

    def handle(self, *args: Any, username: str, password: str, **options: Any) -> None:
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first()
        if user is None:
            user = user_model.objects.create_user(username=username, password=password)
        if not Task.objects.filter(owner=user).exists():
            actor = actor_from_user(user)
            for spec in DEMO_TASKS:
                data = {key: value for key, value in spec.items() if key != "due_in_days"}
                if days := spec.get("due_in_days"):
                    data["due_date"] = timezone.now() + timedelta(days=days)
                task_create(actor=actor, data=data)
        self.stdout.write(f"Demo user: {username} / {password}  ({Task.objects.filter(owner=user).count()} tasks)")
