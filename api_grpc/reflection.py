"""Server reflection in both versions: `grpc.reflection.v1alpha` (what grpcio-reflection serves) and
`grpc.reflection.v1` (the stable name, which current clients such as grpcurl and Postman try first).

grpcio-reflection (1.85) ships only v1alpha. The v1 service is the same protocol under another
package: every message has the same fields under the same numbers, so v1 bytes are v1alpha bytes.
So one servicer answers both: v1 calls are decoded and encoded with the v1alpha message classes.
For `file_containing_symbol("grpc.reflection.v1.ServerReflection")` to answer, the v1 file is added
to the default descriptor pool: the v1alpha file renamed into the v1 package.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

V1_PACKAGE = "grpc.reflection.v1"
V1_FILE = "grpc/reflection/v1/reflection.proto"
V1_SERVICE_NAME = f"{V1_PACKAGE}.ServerReflection"
V1ALPHA_SERVICE_NAME: str = reflection.SERVICE_NAME


def _v1_file() -> None:
    """Add the v1 reflection file to the default pool once (a second server finds it there)."""
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(V1_FILE)
        return
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    old, new = f".{reflection_pb2.DESCRIPTOR.package}.", f".{V1_PACKAGE}."
    proto.name, proto.package = V1_FILE, V1_PACKAGE
    proto.ClearField("options")  # v1alpha's java_package and the like

    def rename(messages: Iterable[descriptor_pb2.DescriptorProto]) -> None:
        for message in messages:
            for field in message.field:
                if field.type_name.startswith(old):
                    field.type_name = new + field.type_name.removeprefix(old)
            rename(message.nested_type)

    rename(proto.message_type)
    for service in proto.service:
        for method in service.method:
            method.input_type = new + method.input_type.removeprefix(old)
            method.output_type = new + method.output_type.removeprefix(old)
    pool.AddSerializedFile(proto.SerializeToString())


def enable_server_reflection(service_names: Iterable[str], server: grpc.Server) -> None:
    """Serve reflection of `service_names` and of both reflection services, as v1alpha and v1."""
    _v1_file()
    names = [*service_names, V1ALPHA_SERVICE_NAME, V1_SERVICE_NAME]
    servicer = reflection.ReflectionServicer(names)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.method_handlers_generic_handler(
        V1_SERVICE_NAME,
        {
            "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                servicer.ServerReflectionInfo,
                request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((v1,))
