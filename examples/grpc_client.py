"""A gRPC client of taskhub: log in over HTTP, then list, create, update and delete over gRPC.

    make run                                   # in another terminal: HTTP :8000 and gRPC :50051
    .venv/bin/python examples/grpc_client.py   # uses the demo user

Only grpcio, protobuf and the generated code in api_grpc/generated are needed.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path

import grpc
from google.protobuf.field_mask_pb2 import FieldMask

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for api_grpc.generated

from api_grpc.generated.tasks.v1 import tasks_pb2 as pb
from api_grpc.generated.tasks.v1 import tasks_pb2_grpc as pb_grpc

HTTP = os.environ.get("TASKHUB_HTTP", "http://127.0.0.1:8000")
GRPC = os.environ.get("TASKHUB_GRPC", "127.0.0.1:50051")


def access_token(username: str = "demo", password: str = "demo-password") -> str:
    request = urllib.request.Request(
        f"{HTTP}/api/v1/auth/token",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        return str(json.load(response)["access"])


def main() -> None:
    metadata = [("authorization", f"Bearer {access_token()}")]
    with grpc.insecure_channel(GRPC) as channel:
        tasks = pb_grpc.TaskServiceStub(channel)

        page = tasks.ListTasks(
            pb.ListTasksRequest(page_size=3, ordering=pb.TASK_ORDERING_PRIORITY_DESC), metadata=metadata, timeout=5
        )
        for task in page.tasks:
            print(f"listed: {task.title} ({pb.Priority.Name(task.priority)})")

        created = tasks.CreateTask(
            pb.CreateTaskRequest(title="Try gRPC", priority=pb.PRIORITY_HIGH, tags=["demo"]),
            metadata=[*metadata, ("idempotency-key", os.urandom(8).hex())],
            timeout=5,
        ).task
        print(f"created: {created.id} version {created.version}")

        updated = tasks.UpdateTask(
            pb.UpdateTaskRequest(
                id=created.id,
                task=pb.Task(status=pb.STATUS_COMPLETED),
                update_mask=FieldMask(paths=["status"]),
                expected_version=created.version,
            ),
            metadata=metadata,
            timeout=5,
        ).task
        print(f"updated: {pb.Status.Name(updated.status)}, completed={updated.completed}, version {updated.version}")

        try:  # the version we last saw is stale now
            tasks.UpdateTask(
                pb.UpdateTaskRequest(
                    id=created.id, task=pb.Task(title="x"), update_mask=FieldMask(paths=["title"]), expected_version=1
                ),
                metadata=metadata,
                timeout=5,
            )
        except grpc.RpcError as error:
            print(f"stale update: {error.code().name}: {error.details()}")

        tasks.DeleteTask(pb.DeleteTaskRequest(id=created.id), metadata=metadata, timeout=5)
        print("deleted")


if __name__ == "__main__":
    main()
