from django.apps import AppConfig


class ApiGraphqlConfig(AppConfig):
    name = "api_graphql"
    verbose_name = "GraphQL API"
