"""deploy/: what can be checked without Docker or a Kubernetes cluster.

- every YAML file parses; the Kubernetes manifests validate against the Kubernetes JSON schemas
  (kubernetes-validate, offline, strict: unknown fields fail) and hang together (selectors,
  probes on /readyz, HPA and PDB targets, env from the ConfigMap/Secret);
- the environment given to the app in compose and Kubernetes is accepted by ``Settings``;
- the docker-compose file has the services and wiring the operator docs describe;
- ``nginx -t`` accepts deploy/nginx/nginx.conf rendered with a throwaway certificate (nginx-light from
  Debian, see .ci/run), and play goes through it over HTTPS.
"""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from contest.settings import Settings
from tests.nginx_edge import edge_conf, render, start_nginx

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


def test_nginx_accepts_the_config(tmp_path: Path, nginx_path: str) -> None:
    nginx = nginx_path
    text = (DEPLOY / "nginx" / "nginx.conf").read_text()
    assert "proxy_buffering off" in text and "limit_req_zone" in text
    # `app` resolves inside compose/Kubernetes only; everything else is checked as written
    conf = edge_conf(tmp_path, "127.0.0.1:8080", 8080, 8443)
    conf.write_text(conf.read_text().replace("listen 127.0.0.1:8080;", "listen 80 reuseport backlog=65535;")
                    .replace("listen 127.0.0.1:8443 ssl http2;", "listen 443 ssl http2 reuseport backlog=65535;"))
    result = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(conf), "-g", f"pid {tmp_path}/nginx.pid;"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    conf.write_text(conf.read_text().replace("proxy_buffering off;", "proxy_buffering maybe;"))
    bad = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(conf), "-g", f"pid {tmp_path}/nginx.pid;"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0
    # the template refuses to render with a certificate path missing
    with pytest.raises(KeyError):
        render(text, {"QUIZ_TLS_CERT": "c", "QUIZ_TLS_KEY": "k", "QUIZ_RESOLVER": "127.0.0.1"})


def test_nginx_tls_settings() -> None:
    """HTTPS as WeChat requires it, with the Mozilla "intermediate" profile (checked as text: the
    handshake itself is exercised by tests/test_https_edge.py)."""
    text = (DEPLOY / "nginx" / "nginx.conf").read_text()
    for needle in ("listen 443 ssl http2", "return 301 https://$host$request_uri", "ssl_protocols TLSv1.2 TLSv1.3;",
                   "ssl_stapling on;", "ssl_stapling_verify on;", 'Strict-Transport-Security "max-age=63072000"',
                   "ssl_certificate ${QUIZ_TLS_CERT};", "ssl_certificate_key ${QUIZ_TLS_KEY};",
                   "ssl_trusted_certificate ${QUIZ_TLS_CHAIN};", "ssl_prefer_server_ciphers off;",
                   "ssl_session_tickets off;", "gzip_vary on;"):
        assert needle in text, needle
    assert "TLSv1.1" not in text and "TLSv1 " not in text
    gzip_types = re.search(r"gzip_types([^;]+);", text)
    assert gzip_types and "application/json" in gzip_types[1] and "event-stream" not in gzip_types[1]
    (compose,) = _docs(DEPLOY / "docker-compose.yml")
    nginx = compose["services"]["nginx"]
    assert {"80:80", "443:443"} <= set(nginx["ports"])
    assert {"QUIZ_TLS_CERT", "QUIZ_TLS_KEY", "QUIZ_TLS_CHAIN", "QUIZ_RESOLVER"} <= nginx["environment"].keys()
    (ingress,) = _by_kind("Ingress")
    assert ingress["spec"]["tls"][0]["secretName"] and ingress["spec"]["tls"][0]["hosts"]
    assert "cert-manager.io/cluster-issuer" in ingress["metadata"]["annotations"]
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"


@pytest.mark.usefixtures("nginx_path")  # skipped where nginx is missing, failed under CI=1
async def test_answers_through_the_nginx_config_take_the_answer_lane(redis_url: str, data_dir: Path,
                                                                     tmp_path: Path) -> None:
    """deploy/nginx/nginx.conf in front of a real server: play goes through, and nginx's upstream
    requests keep the plain shape, so answers take the lane (a config change that, say, sent
    ``Connection: close`` or chunked bodies upstream would quietly move every answer to aiohttp)."""

    import aiohttp
    import redis.asyncio as aioredis
    from aiohttp.test_utils import TestClient

    from contest.appkeys import METRICS
    from contest.embedded_redis import free_port
    from contest.web.app import create_app
    from tests.fixtures.app import LaneTestServer, admin_headers, make_settings, seed_contest

    flush = aioredis.Redis.from_url(redis_url)
    await flush.flushall()
    await flush.aclose()
    app = create_app(make_settings(redis_url, data_dir))
    client = TestClient(LaneTestServer(app, host="127.0.0.1"))
    await client.start_server()
    http_port, port = free_port(), free_port()
    conf = edge_conf(tmp_path, f"127.0.0.1:{client.port}", http_port, port)
    base = f"https://127.0.0.1:{port}"
    proc = await start_nginx(tmp_path, conf, f"{base}/healthz")
    try:
        seeded = await seed_contest(client)
        # HTTPS only: plain HTTP is redirected (aiohttp over TLS still sends nginx-shaped upstream requests)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as session:
            async with session.get(f"http://127.0.0.1:{http_port}/api/v1/contests?x=1", allow_redirects=False) as resp:
                assert resp.status == 301
                assert resp.headers["Location"] == "https://127.0.0.1/api/v1/contests?x=1"
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
