"""deploy/: what can be checked without Docker or a Kubernetes cluster.

- every YAML file parses; the Kubernetes manifests validate against the Kubernetes JSON schemas
  (kubernetes-validate, offline, strict: unknown fields fail) and hang together (selectors,
  probes on /readyz, HPA and PDB targets, env from the ConfigMap/Secret);
- the environment given to the app in compose and Kubernetes is accepted by ``Settings``;
- the docker-compose file has the services and wiring the operator docs describe;
- ``nginx -t`` accepts deploy/nginx/nginx.conf (nginx-light from Debian, see .ci/run).
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from contest.settings import Settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
K8S_VERSION = "1.30.0"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _manifests() -> list[dict[str, Any]]:
    return [d for p in sorted((DEPLOY / "k8s").glob("*.yaml")) for d in _docs(p) if d["kind"] != "Kustomization"]


def _by_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in _manifests() if d["kind"] == kind]


def test_every_yaml_file_parses() -> None:
    files = sorted(DEPLOY.rglob("*.yml")) + sorted(DEPLOY.rglob("*.yaml"))
    assert len(files) >= 10
    for path in files:
        assert _docs(path), path


def test_kubernetes_manifests_match_the_schemas() -> None:
    manifests = _manifests()
    kinds = {d["kind"] for d in manifests}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap", "Secret",
            "StatefulSet"} <= kinds
    for doc in manifests:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    # the validator is not a rubber stamp: a misspelt field fails
    broken = copy.deepcopy(_by_kind("Deployment")[0])
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    kustomization = _docs(DEPLOY / "k8s" / "kustomization.yaml")[0]
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}


def test_kubernetes_objects_hang_together() -> None:
    (deployment,) = [d for d in _by_kind("Deployment") if d["metadata"]["name"] == "quiz-app"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"].startswith("/readyz")
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 30
    refs = {(next(iter(e)), next(iter(e.values()))["name"]) for e in container["envFrom"]}
    names = {(d["kind"], d["metadata"]["name"]) for d in _manifests()}
    for kind_ref, name in refs:
        assert ({"configMapRef": "ConfigMap", "secretRef": "Secret"}[kind_ref], name) in names
    (hpa,) = _by_kind("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "quiz-app"
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    (pdb,) = _by_kind("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    services = [s for s in _by_kind("Service") if s["metadata"]["name"] == "quiz-app"]
    assert services and services[0]["spec"]["selector"].items() <= labels.items()
    # the app's environment as Kubernetes assembles it is a valid configuration
    (config,) = [d for d in _by_kind("ConfigMap") if d["metadata"]["name"] == "quiz-config"]
    (secret,) = _by_kind("Secret")
    settings = Settings.from_env({**config["data"], **secret["stringData"]})
    assert settings.redis_cluster and settings.effective_database_url.startswith("postgresql://")


def test_compose_wires_app_nginx_valkey_postgres_prometheus() -> None:
    (compose,) = _docs(DEPLOY / "docker-compose.yml")
    services = compose["services"]
    assert {"app", "nginx", "valkey", "postgres", "prometheus"} <= services.keys()
    app = services["app"]
    assert app["deploy"]["replicas"] >= 2 and app["stop_grace_period"]
    env = {k: v for k, v in app["environment"].items()}
    env.update(QUIZ_SECRET="s", QUIZ_ADMIN_TOKEN="a", QUIZ_DATABASE_URL="postgresql://quiz:x@postgres:5432/quiz")
    settings = Settings.from_env({k: str(v) for k, v in env.items()})
    assert settings.redis_url == "redis://valkey:6379/0"
    for mount in services["nginx"]["volumes"] + services["valkey"]["volumes"] + services["postgres"]["volumes"] + \
            services["prometheus"]["volumes"]:
        source = mount.split(":")[0]
        if source.startswith("./"):
            assert (DEPLOY / source).exists(), source
    valkey_conf = (DEPLOY / "valkey" / "valkey.conf").read_text()
    assert "appendonly yes" in valkey_conf and "maxmemory-policy noeviction" in valkey_conf
    prometheus = _docs(DEPLOY / "prometheus" / "prometheus.yml")[0]
    assert prometheus["scrape_configs"][0]["metrics_path"] == "/metrics"
    assert (DEPLOY / "Dockerfile").read_text().count("quiz") >= 2


def _nginx_binary() -> str | None:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def _proxy_conf(tmp_path: Path, upstream_port: int, listen_port: int) -> Path:
    """deploy/nginx/nginx.conf as written, pointed at one local app and listening on loopback."""
    text = (DEPLOY / "nginx" / "nginx.conf").read_text()
    conf = tmp_path / "nginx.conf"
    conf.write_text(text.replace("server app:8080", f"server 127.0.0.1:{upstream_port}")
                    .replace("listen 80 reuseport backlog=65535;", f"listen 127.0.0.1:{listen_port};")
                    .replace("worker_processes auto;", "worker_processes 1;"))
    return conf


def test_nginx_accepts_the_config(tmp_path: Path) -> None:
    nginx = _nginx_binary()
    if nginx is None:
        pytest.skip("nginx is not installed (.ci/run installs nginx-light)")
    text = (DEPLOY / "nginx" / "nginx.conf").read_text()
    assert "proxy_buffering off" in text and "limit_req_zone" in text
    # `app` resolves inside compose/Kubernetes only; everything else is checked as written
    conf = tmp_path / "nginx.conf"
    conf.write_text(text.replace("server app:8080", "server 127.0.0.1:8080"))
    result = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(conf), "-g", f"pid {tmp_path}/nginx.pid;"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    conf.write_text(text.replace("server app:8080", "server 127.0.0.1:8080").replace("proxy_buffering off;",
                                                                                      "proxy_buffering maybe;"))
    bad = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(conf), "-g", f"pid {tmp_path}/nginx.pid;"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0


async def test_answers_through_the_nginx_config_take_the_answer_lane(redis_url: str, data_dir: Path,
                                                                     tmp_path: Path) -> None:
    """deploy/nginx/nginx.conf in front of a real server: play goes through, and nginx's upstream
    requests keep the plain shape, so answers take the lane (a config change that, say, sent
    ``Connection: close`` or chunked bodies upstream would quietly move every answer to aiohttp)."""
    import asyncio

    import aiohttp
    import redis.asyncio as aioredis
    from aiohttp.test_utils import TestClient

    from contest.app import create_app
    from contest.appkeys import METRICS
    from contest.embedded_redis import free_port
    from tests.fixtures.app import LaneTestServer, admin_headers, make_settings, seed_contest

    nginx = _nginx_binary()
    assert nginx is not None, "nginx is not installed (.ci/run installs nginx-light)"
    flush = aioredis.Redis.from_url(redis_url)
    await flush.flushall()
    await flush.aclose()
    app = create_app(make_settings(redis_url, data_dir))
    client = TestClient(LaneTestServer(app, host="127.0.0.1"))
    await client.start_server()
    port = free_port()
    conf = _proxy_conf(tmp_path, client.port, port)
    proc = await asyncio.create_subprocess_exec(
        nginx, "-p", str(tmp_path), "-c", str(conf), "-g", f"daemon off; pid {tmp_path}/nginx.pid;",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        seeded = await seed_contest(client)
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(f"{base}/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.05)
            async with session.post(f"{base}/api/v1/auth/register",
                                    json={"name": "代理", "phone": "13900000077", "org_id": "360302002001"}) as resp:
                assert resp.status == 201, await resp.text()
                headers = {"Authorization": f"Bearer {(await resp.json())['token']}"}
            async with session.post(f"{base}/api/v1/contests/{seeded.contest_id}/attempts", headers=headers) as resp:
                attempt = await resp.json()
                assert resp.status == 201, attempt
            before = app[METRICS].lane_requests
            for question in attempt["questions"][:3]:
                async with session.post(f"{base}/api/v1/attempts/{attempt['attempt_id']}/answers", headers=headers,
                                        json={"index": question["index"], "choice": "A"}) as resp:
                    assert resp.status == 200, await resp.text()
            async with session.post(f"{base}/api/v1/attempts/{attempt['attempt_id']}/answers", headers=headers,
                                    json={"index": 0}) as resp:
                assert resp.status == 400 and (await resp.json())["error"]["code"] == "validation_failed"
            async with session.get(f"{base}/api/v1/admin/contests", headers=admin_headers()) as resp:
                assert resp.status == 200
        assert app[METRICS].lane_requests - before == 4
    finally:
        proc.terminate()
        await proc.wait()
        await client.close()
