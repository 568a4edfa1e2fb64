"""TaskService: parse the request, call one service or selector, convert the result. Nothing else."""

from __future__ import annotations

import grpc

from api_grpc.context import current_actor, current_call
from api_grpc.converters import changes_from_proto, create_data_from_proto, list_arguments_from_proto, task_to_proto
from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from api_grpc.generated.tasks.v1 import tasks_pb2_grpc as pb_grpc
from tasks.selectors import task_get, task_list
from tasks.services import task_create_idempotent, task_delete, task_update


class TaskServicer(pb_grpc.TaskServiceServicer):
    def CreateTask(self, request: pb.CreateTaskRequest, context: grpc.ServicerContext) -> pb.CreateTaskResponse:
        key = current_call().metadata.get("idempotency-key")
        created = task_create_idempotent(
            actor=current_actor(), data=create_data_from_proto(request), idempotency_key=key
        )
        if created.replayed:
            current_call().add_trailer(context, "idempotent-replayed", "true")
        return pb.CreateTaskResponse(task=task_to_proto(created.task))

    def GetTask(self, request: pb.GetTaskRequest, context: grpc.ServicerContext) -> pb.GetTaskResponse:
        return pb.GetTaskResponse(task=task_to_proto(task_get(actor=current_actor(), task_id=request.id)))

    def ListTasks(self, request: pb.ListTasksRequest, context: grpc.ServicerContext) -> pb.ListTasksResponse:
        page = task_list(actor=current_actor(), **list_arguments_from_proto(request))
        return pb.ListTasksResponse(
            tasks=[task_to_proto(task) for task in page.items], next_page_token=page.next_cursor or ""
        )

    def UpdateTask(self, request: pb.UpdateTaskRequest, context: grpc.ServicerContext) -> pb.UpdateTaskResponse:
        task = task_update(
            actor=current_actor(),
            task_id=request.id,
            changes=changes_from_proto(request.task, request.update_mask.paths),
            expected_version=request.expected_version if request.HasField("expected_version") else None,
        )
        return pb.UpdateTaskResponse(task=task_to_proto(task))

    def DeleteTask(self, request: pb.DeleteTaskRequest, context: grpc.ServicerContext) -> pb.DeleteTaskResponse:
        task_delete(
            actor=current_actor(),
            task_id=request.id,
            expected_version=request.expected_version if request.HasField("expected_version") else None,
        )
        return pb.DeleteTaskResponse()
