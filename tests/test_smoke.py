from rest_framework.test import APIClient


def test_task_roundtrip(api: APIClient) -> None:
    created = api.post("/api/v1/tasks", {"title": "x"}, format="json")
    assert created.status_code == 201, created.content
    got = api.get(f"/api/v1/tasks/{created.json()['id']}")
    assert got.json()["title"] == "x"
