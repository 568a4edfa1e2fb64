"""factory_boy factories for users (with roles) and tasks."""

from __future__ import annotations

from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from core.auth import actor_from_user
from core.types import Actor, Role
from tasks.models import Priority, Status, Task


class UserFactory(factory.django.DjangoModelFactory):
    """A user; every new user is an editor (core.signals). Pass `role=` to make it exactly that role."""

    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "pass-word-123")

    @factory.post_generation
    def role(self, create: bool, extracted: Role | None, **kwargs: Any) -> None:
        if create and extracted is not None:
            self.groups.set([Group.objects.get_or_create(name=extracted)[0]])
        if create:
            self.save()


class TaskFactory(factory.django.DjangoModelFactory):
    """A task saved directly (tests of reads); write paths are tested through the services."""

    class Meta:
        model = Task

    owner = factory.SubFactory(UserFactory)
    title = factory.Faker("sentence", nb_words=4)
    description = factory.Faker("paragraph")
    priority = Priority.MEDIUM
    status = Status.TODO
    tags = factory.LazyFunction(list)


def actor_of(user: Any) -> Actor:
    return actor_from_user(user)
