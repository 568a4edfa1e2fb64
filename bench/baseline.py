"""The baseline row (d): the get-by-id a DRF user writes first, with none of taskhub's code in the way.

A `RetrieveAPIView` with a `ModelSerializer` (`fields = "__all__"`) and simplejwt's own
`JWTAuthentication` (one query for the user, one for the task; no cache). It goes through the same
server, settings and middleware as the full stack, so the ratio of the two rows measures what
taskhub's own request path costs or saves compared with textbook DRF.
"""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import generics, serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework_simplejwt.authentication import JWTAuthentication

from tasks.models import Task


class BaselineTaskSerializer(serializers.ModelSerializer[Task]):
    class Meta:
        model = Task
        fields = "__all__"


class BaselineTaskDetail(generics.RetrieveAPIView[Task]):
    authentication_classes = [JWTAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = []  # plain DRF: no throttle (taskhub's is switched off in the bench anyway)
    serializer_class = BaselineTaskSerializer

    def get_queryset(self) -> QuerySet[Task]:
        # The usual "only your own" scoping of a plain DRF view.
        return Task.objects.filter(owner=self.request.user)
