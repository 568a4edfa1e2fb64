"""A generic gRPC client that knows nothing of taskhub but the server reflection protocol.

Run as `python reflection_client.py HOST:PORT` with the access token in $TASKHUB_TOKEN. It lists the
services, fetches the descriptors of tasks.v1.TaskService and grpc.health.v1.Health through
reflection, builds message classes from them in a pool of its own, calls ListTasks and Health/Check
with those, and prints what it found as JSON. It imports only grpcio, grpcio-reflection and
protobuf, never our generated code (test_reflection.py checks the module list it prints).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc


def ask(stub: Any, **request: Any) -> Any:
    """One request on the bidirectional reflection stream; the one answer."""
    (response,) = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(**request)]), timeout=10)
    if response.HasField("error_response"):
        raise RuntimeError(response.error_response.error_message)
    return response


def load_symbol(stub: Any, pool: descriptor_pool.DescriptorPool, symbol: str) -> None:
    """Add the file defining `symbol`, and every file it imports, to `pool` (imports first)."""
    files: dict[str, bytes] = {}

    def fetch(response: Any) -> None:
        for raw in response.file_descriptor_response.file_descriptor_proto:
            files[descriptor_pb2.FileDescriptorProto.FromString(raw).name] = raw

    fetch(ask(stub, file_containing_symbol=symbol))
    added: set[str] = set()

    def add(name: str) -> None:
        if name in added:
            return
        if name not in files:
            fetch(ask(stub, file_by_filename=name))
        for dependency in descriptor_pb2.FileDescriptorProto.FromString(files[name]).dependency:
            add(dependency)
        pool.AddSerializedFile(files[name])
        added.add(name)

    for name in list(files):
        add(name)


def call(channel: grpc.Channel, method: Any, metadata: Any = (), **fields: Any) -> Any:
    request_class = message_factory.GetMessageClass(method.input_type)
    reply_class = message_factory.GetMessageClass(method.output_type)
    rpc = channel.unary_unary(
        f"/{method.containing_service.full_name}/{method.name}",
        request_serializer=request_class.SerializeToString,
        response_deserializer=reply_class.FromString,
    )
    return rpc(request_class(**fields), metadata=metadata, timeout=10)


def main(address: str, token: str) -> dict[str, Any]:
    with grpc.insecure_channel(address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        services = [s.name for s in ask(stub, list_services="").list_services_response.service]

        pool = descriptor_pool.DescriptorPool()  # not the default pool: nothing is known in advance
        load_symbol(stub, pool, "tasks.v1.TaskService")
        load_symbol(stub, pool, "grpc.health.v1.Health")
        tasks = pool.FindServiceByName("tasks.v1.TaskService")
        health = pool.FindServiceByName("grpc.health.v1.Health")

        reply = call(channel, tasks.methods_by_name["ListTasks"], [("authorization", f"Bearer {token}")], page_size=10)
        task_type = tasks.methods_by_name["ListTasks"].output_type.fields_by_name["tasks"].message_type
        priorities = task_type.fields_by_name["priority"].enum_type.values_by_number
        checked = call(channel, health.methods_by_name["Check"], service="tasks.v1.TaskService")
        status_names = health.methods_by_name["Check"].output_type.fields_by_name["status"].enum_type
        return {
            "services": services,
            "methods": [method.name for method in tasks.methods],
            "task_fields": [field.name for field in task_type.fields],
            "tasks": [
                {
                    "id": task.id,
                    "title": task.title,
                    "priority": priorities[task.priority].name,
                    "tags": list(task.tags),
                }
                for task in reply.tasks
            ],
            "next_page_token": reply.next_page_token,
            "health": status_names.values_by_number[checked.status].name,
            "modules": sorted(name for name in sys.modules if name.split(".")[0] in {"api_grpc", "django", "tasks"}),
        }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], os.environ["TASKHUB_TOKEN"])))
