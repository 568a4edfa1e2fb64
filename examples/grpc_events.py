"""Live events over gRPC: watch with WatchTasks, write with SyncTasks, then resume after an event id.

    make run                                   # in another terminal: HTTP :8000 and gRPC :50051
    .venv/bin/python examples/grpc_events.py   # uses the demo user

Only grpcio, protobuf and the generated code in api_grpc/generated are needed. TASKHUB_TOKEN, if set,
is used as the access token instead of logging in over HTTP.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
from google.protobuf.field_mask_pb2 import FieldMask

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for api_grpc.generated

from grpc_client import GRPC, access_token

from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from api_grpc.generated.tasks.v1 import tasks_pb2_grpc as pb_grpc

STATUS = {status.value[0]: status.name for status in grpc.StatusCode}


def describe(event: pb.TaskEvent) -> str:
    return f"{pb.TaskEventType.Name(event.type)} {event.task.title or event.task_id} version {event.version}"


def main() -> None:
    metadata = [("authorization", f"Bearer {os.environ.get('TASKHUB_TOKEN') or access_token()}")]
    with grpc.insecure_channel(GRPC) as channel:
        tasks = pb_grpc.TaskServiceStub(channel)

        # Watch my tasks. The response headers come once the stream is subscribed: every change
        # committed after that reaches it.
        watch = tasks.WatchTasks(pb.WatchTasksRequest(only_mine=True), metadata=metadata, timeout=30)
        watch.initial_metadata()

        # Write over SyncTasks: each command has its request id; each answer names it.
        created_id = ""

        def commands() -> Iterator[pb.SyncTasksRequest]:
            yield pb.SyncTasksRequest(
                request_id="c1", create=pb.CreateTaskRequest(title="Watch me"), idempotency_key=os.urandom(8).hex()
            )
            yield pb.SyncTasksRequest(request_id="d0", delete=pb.DeleteTaskRequest(id="not-a-task"))

        for answer in tasks.SyncTasks(commands(), metadata=metadata, timeout=30):
            if answer.HasField("result"):
                created_id = answer.result.task.id
                print(f"result {answer.result.request_id}: {answer.result.task.title}")
            else:
                error = answer.error  # the status the unary call would end with; the stream goes on
                print(f"error {error.request_id}: {STATUS[error.code]} {error.details['taskhub-error-code']}")

        tasks.UpdateTask(
            pb.UpdateTaskRequest(
                id=created_id, task=pb.Task(status=pb.STATUS_COMPLETED), update_mask=FieldMask(paths=["status"])
            ),
            metadata=metadata,
            timeout=5,
        )
        tasks.DeleteTask(pb.DeleteTaskRequest(id=created_id), metadata=metadata, timeout=5)

        received = []
        for event in watch:
            received.append(event)
            print(f"event: {describe(event)}")
            if len(received) == 3:
                break
        watch.cancel()

        # Reconnect after the first event: the two later ones come again, once each, in order.
        resumed = tasks.WatchTasks(pb.WatchTasksRequest(after=received[0].id), metadata=metadata, timeout=30)
        for count, event in enumerate(resumed, start=1):
            print(f"resumed: {describe(event)}")
            if count == 2:
                break
        resumed.cancel()


if __name__ == "__main__":
    main()
