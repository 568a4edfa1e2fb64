from django.apps import AppConfig


class ApiGrpcConfig(AppConfig):
    name = "api_grpc"
    verbose_name = "gRPC API"
