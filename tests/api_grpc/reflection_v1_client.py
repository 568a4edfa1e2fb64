"""A reflection client of version v1 (`grpc.reflection.v1.ServerReflection`), built from
tests/api_grpc/reflection_v1.proto compiled into the directory given as the second argument.

Run as `python reflection_v1_client.py HOST:PORT STUB_DIR`. It lists the services, fetches the files
defining tasks.v1.TaskService and the v1 reflection service itself, and prints what it found as
JSON, with the modules it loaded (test_reflection.py checks grpcio-reflection is not among them).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import grpc
from google.protobuf import descriptor_pb2


def main(address: str) -> dict[str, Any]:
    import reflection_v1_pb2 as pb  # compiled by the test into sys.path[0]
    import reflection_v1_pb2_grpc as pb_grpc

    def ask(stub: Any, **request: Any) -> Any:
        (response,) = stub.ServerReflectionInfo(iter([pb.ServerReflectionRequest(**request)]), timeout=10)
        if response.HasField("error_response"):
            raise RuntimeError(response.error_response.error_message)
        return response

    def files(stub: Any, symbol: str) -> list[descriptor_pb2.FileDescriptorProto]:
        raw = ask(stub, file_containing_symbol=symbol).file_descriptor_response.file_descriptor_proto
        return [descriptor_pb2.FileDescriptorProto.FromString(data) for data in raw]

    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.ServerReflectionStub(channel)
        services = [service.name for service in ask(stub, list_services="").list_services_response.service]
        tasks = next(f for f in files(stub, "tasks.v1.TaskService") if f.package == "tasks.v1")
        v1 = files(stub, "grpc.reflection.v1.ServerReflection")[0]
        return {
            "services": services,
            "tasks_methods": [method.name for service in tasks.service for method in service.method],
            "v1_file": [v1.name, v1.package, [message.name for message in v1.message_type][:2]],
            # `import grpc` loads the empty `grpc_reflection` package itself; its v1alpha code must not load.
            "modules": sorted(name for name in sys.modules if name.startswith(("grpc_reflection.", "api_grpc"))),
        }


if __name__ == "__main__":
    sys.path.insert(0, sys.argv[2])
    print(json.dumps(main(sys.argv[1])))
