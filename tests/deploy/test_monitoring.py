"""The Grafana dashboard and the Prometheus alert rules: valid, and about metrics Studio exposes.

`promtool` (Debian's `prometheus` package) checks the rules and every dashboard query; .ci/run
and Jenkins install it and set STUDIO_REQUIRE_PROMTOOL=1, so there these tests cannot skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.cfn import ROOT
from tests.gateway.conftest import account

MONITORING = ROOT / "deployment" / "monitoring"
DASHBOARD = MONITORING / "grafana-studio.json"
ALERTS = MONITORING / "alerts.yml"
API = "/api/v1"
# Series Prometheus makes itself, not Studio.
PROMETHEUS_OWN = frozenset({"up"})
_METRIC = re.compile(r"\b(studio_[a-z0-9_]+)\b")
_ROUTE_LITERAL = re.compile(r'\broute="([^"]+)"')


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("STUDIO_REQUIRE_PROMTOOL") == "1":
            pytest.fail("STUDIO_REQUIRE_PROMTOOL=1 but promtool is not installed (apt: prometheus)")
        pytest.skip("promtool not installed (apt: prometheus); CI requires it")
    return found


def dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def dashboard_queries() -> list[str]:
    return [
        target["expr"] for panel in dashboard()["panels"] for target in panel.get("targets", [])
    ]


def rule_queries() -> list[str]:
    groups = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def test_alert_rules_pass_promtool() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(ALERTS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_that_infer_a_cause_fire_on_it_and_not_on_look_alikes() -> None:
    result = subprocess.run(
        [promtool(), "test", "rules", str(MONITORING / "alerts.test.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_queries_pass_promtool(tmp_path: Path) -> None:
    # promtool parses PromQL only inside rule files: each panel query becomes a recording rule,
    # with Grafana's $__rate_interval given a value.
    rules = [
        {"record": f"dashboard:query_{i}", "expr": expr.replace("$__rate_interval", "5m")}
        for i, expr in enumerate(dashboard_queries())
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool(), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_is_a_well_formed_grafana_dashboard() -> None:
    data = dashboard()
    assert data["uid"] and data["title"] and isinstance(data["schemaVersion"], int)
    variables = {v["name"] for v in data["templating"]["list"]}
    ids = [panel["id"] for panel in data["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in data["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        assert grid["h"] > 0 and grid["y"] >= 0, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["title"] and panel["targets"], panel["id"]
        assert panel["datasource"]["uid"].strip("${}") in variables, panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
    # Every subject the operators asked for has a panel.
    queries = " ".join(dashboard_queries())
    for metric in (
        "studio_http_requests_total",
        "studio_http_request_duration_seconds_bucket",
        "studio_downstream_duration_seconds_bucket",
        "studio_downstream_errors_total",
        "studio_circuit_breaker_open",
        "studio_rate_limit_rejections_total",
        "studio_session_cache_live",
    ):
        assert metric in queries, f"no panel shows {metric}"
    assert f'route="{API}/auth/login"' in queries, "no panel shows login outcomes"


async def test_every_metric_queried_exists_in_a_live_studio(gateway: Any) -> None:
    """After some traffic (sign-in, a refusal, proxied calls, one to a service that is down),
    every series name and route label the dashboard and the rules name is in /metrics."""
    async with gateway(down=("ingestion",), rate_limit_login_attempts=1) as (client, state):
        viewer = await account(client, state, "admin")  # register and one login
        refused = await client.post(
            f"{API}/auth/login", json={"email": "nobody@example.com", "password": "x" * 12}
        )
        assert refused.status_code == 429
        assert (await client.get(f"{API}/zen/anything", headers=viewer)).status_code == 200
        down = await client.get(f"{API}/ingestion/anything", headers=viewer)
        assert down.json()["error"]["code"] == "UPSTREAM_UNAVAILABLE"
        assert (await client.get(f"{API}/health")).status_code == 200
        exposition = await client.get("/metrics")
    assert exposition.status_code == 200
    samples: set[str] = set()
    routes: set[str] = set()
    for family in text_string_to_metric_families(exposition.text):
        samples.add(family.name)
        for sample in family.samples:
            samples.add(sample.name)
            if "route" in sample.labels:
                routes.add(sample.labels["route"])
    queries = dashboard_queries() + rule_queries()
    named = {name for query in queries for name in _METRIC.findall(query)}
    missing = sorted(named - samples - PROMETHEUS_OWN)
    assert not missing, f"queried but not exposed by Studio: {missing}"
    literal_routes = {route for query in queries for route in _ROUTE_LITERAL.findall(query)}
    assert literal_routes <= routes, f"route labels never seen: {literal_routes - routes}"
