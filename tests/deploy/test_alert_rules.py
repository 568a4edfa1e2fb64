"""The Prometheus alerting rules (docker/prometheus/alerts.yml) against the real tools and the real metrics.

- `promtool check rules` accepts the file, and `promtool test rules` passes its unit tests
  (docker/prometheus/alerts.test.yml), in which every alert fires on series that must trigger it
  and stays silent on healthy ones; a rule broken either way (never firing, always firing) fails them.
- Every alert carries `for:`, a severity, a summary, a description and a runbook link to one of the
  agreed anchors of the deploy page.
- Every metric and label an alert selects on is in a real /metrics answer of this project (Django's
  test client, with the metrics token), so renaming a metric or a label breaks this test; the gRPC
  codes counted as faults are the interceptor's, and the endpoints left out are real route labels (or
  the gRPC streaming methods of the service's descriptor).

promtool comes from Debian's `prometheus` package (`make prometheus`), found as the metrics tests
find it (`tests.live.binary`, the PROMTOOL variable).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings
from django.test import Client
from prometheus_client.metrics import MetricWrapperBase

from api_grpc.generated.tasks.v1 import tasks_pb2
from api_grpc.interceptors import _SERVER_FAULTS
from observability import metrics
from tests.live import binary
from tests.observability.metrics_live import Scrape
from tests.test_docs import anchors

ROOT = Path(settings.BASE_DIR)
RULES = ROOT / "docker/prometheus/alerts.yml"
RULE_TESTS = ROOT / "docker/prometheus/alerts.test.yml"
SEVERITIES = {"critical", "warning", "info"}
# The runbook sections of the deploy page (docs/alerts.md lists them).
RUNBOOK = "docs/deploy.md#"
RUNBOOK_ANCHORS = {
    "runbook-high-error-ratio",
    "runbook-slow-requests",
    "runbook-replica-not-ready",
    "runbook-rate-limited",
    "runbook-cache-errors",
    "runbook-grpc-errors",
}
# Labels Prometheus adds to every scraped series, and series it records itself.
TARGET_LABELS = {"job", "instance"}
PROMETHEUS_SERIES = {"up": TARGET_LABELS}
JOBS = {"taskhub-web", "taskhub-events", "taskhub-grpc"}

STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\}|\[)")
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
FUNCTIONS_AND_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool"}


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def selectors(expr: str) -> list[tuple[str, dict[str, tuple[str, str]]]]:
    """Each series selector of a PromQL expression: its metric name and its label matchers
    (name -> (operator, value)). Every selector in alerts.yml names its metric (`name{...}` or `name[...]`)."""
    found = []
    for match in SELECTOR.finditer(expr):
        name, rest = match.groups()
        if name in FUNCTIONS_AND_KEYWORDS:
            continue
        matchers = {label: (op, value) for label, op, value in MATCHER.findall(rest)} if rest != "[" else {}
        found.append((name, matchers))
    return found


def promtool(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("promtool"), *map(str, arguments)], capture_output=True, text=True, timeout=60, cwd=ROOT
    )


# -- promtool --------------------------------------------------------------------------------------------


def test_promtool_accepts_the_rules() -> None:
    result = promtool("check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout, result.stdout
    assert "warning" not in (result.stdout + result.stderr).lower(), result.stdout + result.stderr


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    result = promtool("test", "rules", RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout, result.stdout


def test_every_alert_is_unit_tested_firing_and_silent() -> None:
    """Each alert has a case where it fires and one, past its `for:`, where it must not."""
    document = yaml.safe_load(RULE_TESTS.read_text())
    assert document["rule_files"] == [RULES.name]
    firing: set[str] = set()
    silent: set[str] = set()
    durations = {alert["alert"]: minutes(alert["for"]) for alert in alerts()}
    for case in document["tests"]:
        for check in case["alert_rule_test"]:
            name = check["alertname"]
            if check.get("exp_alerts"):
                firing.add(name)
            elif minutes(check["eval_time"]) > durations[name]:
                silent.add(name)
    names = set(durations)
    assert firing == names, names - firing
    assert silent == names, names - silent


def minutes(duration: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([smh])", duration).groups()  # type: ignore[union-attr]
    return int(number) * {"s": 1, "m": 60, "h": 3600}[unit] // 60


@pytest.mark.parametrize("mutation", ["never fires", "always fires"])
@pytest.mark.parametrize("name", [alert["alert"] for alert in alerts()])
def test_the_unit_tests_catch_a_broken_alert(tmp_path: Path, name: str, mutation: str) -> None:
    """The unit tests have teeth: with one alert's expression replaced, `promtool test rules` fails."""
    document = yaml.safe_load(RULES.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == name:
                rule["expr"] = "vector(1) < 0" if mutation == "never fires" else "vector(1)"
    (tmp_path / RULES.name).write_text(yaml.safe_dump(document))
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    result = subprocess.run(
        [binary("promtool"), "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode != 0, result.stdout + result.stderr
    assert f"alertname: {name}," in result.stdout + result.stderr, result.stdout + result.stderr


# -- what every alert carries ------------------------------------------------------------------------------


@pytest.mark.parametrize("alert", alerts(), ids=lambda alert: alert["alert"])
def test_every_alert_has_a_duration_severity_annotations_and_a_runbook(alert: dict[str, Any]) -> None:
    assert alert["alert"].startswith("Taskhub")
    assert minutes(alert["for"]) >= 1
    assert alert["labels"]["severity"] in SEVERITIES
    annotations = alert["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}
    assert annotations["summary"].strip() and annotations["description"].strip()
    assert annotations["runbook_url"].startswith(RUNBOOK)
    assert annotations["runbook_url"].removeprefix(RUNBOOK) in RUNBOOK_ANCHORS


def test_every_runbook_anchor_is_used() -> None:
    used = {alert["annotations"]["runbook_url"].removeprefix(RUNBOOK) for alert in alerts()}
    assert used == RUNBOOK_ANCHORS


def test_every_runbook_anchor_is_a_section_of_the_deploy_page() -> None:
    assert anchors("docs/deploy.md") >= RUNBOOK_ANCHORS


def test_the_alerts_are_documented() -> None:
    page = (ROOT / "docs/alerts.md").read_text()
    for alert in alerts():
        assert f"`{alert['alert']}`" in page, alert["alert"]
    for anchor in RUNBOOK_ANCHORS:
        assert f"#{anchor}" in page, anchor


# -- the metrics they read ------------------------------------------------------------------------------------


def defined_labels() -> dict[str, set[str]]:
    """Each sample name of observability/metrics.py with the labels its definition declares."""
    names: dict[str, set[str]] = {}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            labels = set(value._labelnames)
            kind = value._type
            base = value._name
            samples = {
                "counter": [f"{base}_total"],
                "histogram": [f"{base}_bucket", f"{base}_count", f"{base}_sum"],
                "gauge": [base],
            }[kind]
            for sample in samples:
                names[sample] = labels | ({"le"} if sample.endswith("_bucket") else set())
    return names


def scraped_labels(scrape: Scrape) -> dict[str, set[str]]:
    """Each sample name of a real scrape with the labels it carries; a family without samples yet (a
    labelled counter nothing incremented) is listed by the names its type gives its samples."""
    names: dict[str, set[str]] = {}
    for family in scrape.families:
        kind_samples = {
            "counter": [f"{family.name}_total"],
            "histogram": [f"{family.name}_bucket", f"{family.name}_count", f"{family.name}_sum"],
        }.get(family.type, [family.name])
        for sample_name in kind_samples:
            names.setdefault(sample_name, set())
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def grpc_streams() -> set[str]:
    """The `endpoint` labels of the gRPC streaming calls (the interceptor labels a call by its full method name),
    from the service's descriptor: the alerts leave them out of the latencies and the fault ratio."""
    service = tasks_pb2.DESCRIPTOR.services_by_name["TaskService"]
    return {f"/{service.full_name}/{method.name}" for method in service.methods if method.server_streaming}


def test_the_grpc_streams_are_watch_and_sync() -> None:
    assert grpc_streams() == {"/tasks.v1.TaskService/WatchTasks", "/tasks.v1.TaskService/SyncTasks"}


@pytest.mark.django_db
def test_every_metric_and_label_an_alert_selects_is_in_the_real_metrics() -> None:
    client = Client()
    auth = {"Authorization": f"Bearer {settings.METRICS_TOKEN}"}
    for path in ("/healthz", "/readyz", "/health", "/api/v1/tasks", "/metrics"):
        client.get(path, headers=auth)  # a scrape is counted once answered: the next one shows it
    response = client.get("/metrics", headers=auth)
    assert response.status_code == 200, response.content[:300]
    scrape = Scrape(response.content.decode())
    scraped = scraped_labels(scrape)
    defined = defined_labels()
    endpoints = {sample.labels["endpoint"] for sample in scrape.matching("api_requests_total")} | grpc_streams()

    checked = set()
    for alert in alerts():
        found = selectors(alert["expr"])
        assert found, alert["alert"]
        for name, matchers in found:
            checked.add(name)
            if name in PROMETHEUS_SERIES:
                assert set(matchers) <= PROMETHEUS_SERIES[name], (alert["alert"], name, matchers)
                assert "job" in matchers, (alert["alert"], name)
                jobs = set(matchers["job"][1].split("|"))
                assert jobs <= JOBS, (alert["alert"], jobs)
                continue
            assert name in scraped, f"{alert['alert']}: {name} is not in /metrics"
            labels = set(matchers) - TARGET_LABELS
            known = scraped[name] | defined.get(name, set())
            assert labels <= known, (alert["alert"], name, labels - known)
            if "endpoint" in matchers:
                # The endpoints an alert leaves out are the labels those requests really get.
                assert set(matchers["endpoint"][1].split("|")) <= endpoints, (alert["alert"], endpoints)
    assert {"api_requests_total", "api_request_duration_seconds_bucket", "up"} <= checked


def test_the_grpc_fault_codes_are_the_interceptors() -> None:
    """TaskhubGrpcErrors counts the codes the gRPC interceptor marks as server faults on the trace."""
    [alert] = [alert for alert in alerts() if alert["alert"] == "TaskhubGrpcErrors"]
    statuses = [matchers["status"] for _, matchers in selectors(alert["expr"]) if "status" in matchers]
    assert statuses and all(op == "=~" for op, _ in statuses)
    for _, pattern in statuses:
        assert set(pattern.split("|")) == {code.name for code in _SERVER_FAULTS}
    assert all(code.name in alert["annotations"]["description"] for code in _SERVER_FAULTS)


def test_the_selector_parser_reads_names_and_matchers() -> None:
    expr = 'sum by (le) (rate(a_total{x="1",y=~"a|b"}[5m])) / on() up{job="j"} + absent(b[1m])'
    assert selectors(STRING.sub('""', expr)) == [
        ("a_total", {"x": ("=", ""), "y": ("=~", "")}),
        ("up", {"job": ("=", "")}),
        ("b", {}),
    ]
    assert selectors(expr)[0] == ("a_total", {"x": ("=", "1"), "y": ("=~", "a|b")})
