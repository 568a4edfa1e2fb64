"""The writes of TaskService, shared by the unary calls and the commands of SyncTasks: one request
message in, one service call, the domain's result out."""

from __future__ import annotations

from api_grpc.converters import changes_from_proto, create_data_from_proto
from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from core.types import Actor
from tasks.models import Task
from tasks.services import Creation, task_create_idempotent, task_delete, task_update


def create(actor: Actor, request: pb.CreateTaskRequest, idempotency_key: str | None) -> Creation:
    return task_create_idempotent(actor=actor, data=create_data_from_proto(request), idempotency_key=idempotency_key)


def update(actor: Actor, request: pb.UpdateTaskRequest) -> Task:
    return task_update(
        actor=actor,
        task_id=request.id,
        changes=changes_from_proto(request.task, request.update_mask.paths),
        expected_version=request.expected_version if request.HasField("expected_version") else None,
    )


def delete(actor: Actor, request: pb.DeleteTaskRequest) -> None:
    task_delete(
        actor=actor,
        task_id=request.id,
        expected_version=request.expected_version if request.HasField("expected_version") else None,
    )
