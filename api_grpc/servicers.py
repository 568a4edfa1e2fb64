"""TaskService: parse the request, call one service or selector, convert the result. Nothing else."""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from api_grpc.commands import create, delete, update
from api_grpc.context import current_actor, current_call, current_credential
from api_grpc.converters import event_to_proto, list_arguments_from_proto, task_to_proto, watch_arguments_from_proto
from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from api_grpc.generated.tasks.v1 import tasks_pb2_grpc as pb_grpc
from api_grpc.interceptors import client_address
from api_grpc.replies import get_task_reply, list_tasks_reply
from api_grpc.streams import OpenStreams, events_of
from api_grpc.sync import SyncSession
from tasks.events import subscribe


class TaskServicer(pb_grpc.TaskServiceServicer):
    def __init__(self, streams: OpenStreams) -> None:
        self.streams = streams

    def CreateTask(self, request: pb.CreateTaskRequest, context: grpc.ServicerContext) -> pb.CreateTaskResponse:
        created = create(current_actor(), request, current_call().metadata.get("idempotency-key"))
        if created.replayed:
            current_call().add_trailer(context, "idempotent-replayed", "true")
        return pb.CreateTaskResponse(task=task_to_proto(created.task))

    def GetTask(self, request: pb.GetTaskRequest, context: grpc.ServicerContext) -> pb.GetTaskResponse:
        # On a cache hit, the serialized reply (api_grpc.replies); the interceptor sends it as it is.
        return get_task_reply(actor=current_actor(), task_id=request.id)  # type: ignore[return-value]

    def ListTasks(self, request: pb.ListTasksRequest, context: grpc.ServicerContext) -> pb.ListTasksResponse:
        # The serialized reply (api_grpc.replies), its page's tasks remembered; sent as it is.
        return list_tasks_reply(actor=current_actor(), **list_arguments_from_proto(request))  # type: ignore[return-value]

    def UpdateTask(self, request: pb.UpdateTaskRequest, context: grpc.ServicerContext) -> pb.UpdateTaskResponse:
        return pb.UpdateTaskResponse(task=task_to_proto(update(current_actor(), request)))

    def DeleteTask(self, request: pb.DeleteTaskRequest, context: grpc.ServicerContext) -> pb.DeleteTaskResponse:
        delete(current_actor(), request)
        return pb.DeleteTaskResponse()

    def WatchTasks(self, request: pb.WatchTasksRequest, context: grpc.ServicerContext) -> Iterator[pb.TaskEvent]:
        subscription = subscribe(
            actor=current_actor(),
            credential=current_credential(),
            protocol="grpc",
            **watch_arguments_from_proto(request),
        )
        try:
            # The response headers go out once the stream is subscribed: a client that waits for them
            # (`initial_metadata()`) knows that every change committed from then on reaches it.
            context.send_initial_metadata(())
            for event in events_of(subscription, context, self.streams):
                yield event_to_proto(event)
        finally:
            subscription.close()

    def SyncTasks(
        self, request_iterator: Iterator[pb.SyncTasksRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.SyncTasksResponse]:
        session = SyncSession(
            context=context,
            streams=self.streams,
            actor=current_actor(),
            credential=current_credential(),
            address=client_address(current_call().metadata, context.peer()),
        )
        yield from session.run(request_iterator)
