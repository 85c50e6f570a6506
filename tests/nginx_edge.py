"""deploy/nginx/nginx.conf made runnable on loopback: rendered template, throwaway certificate, a running nginx.

The config is a template (``${QUIZ_TLS_CERT}`` ...), filled in here the way the nginx image's
envsubst step fills it in production; only the listen addresses and the upstream are changed.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["NGINX_DIR", "edge_conf", "nginx_binary", "render", "self_signed", "start_nginx"]

NGINX_DIR = Path(__file__).resolve().parents[1] / "deploy" / "nginx"
HTTP_LISTEN = "listen 80 reuseport backlog=65535;"
HTTPS_LISTEN = "listen 443 ssl http2 reuseport backlog=65535;"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def render(text: str, env: Mapping[str, str]) -> str:
    """envsubst restricted to QUIZ_* names (NGINX_ENVSUBST_FILTER=^QUIZ_ in docker-compose): nginx's own
    ``$host`` and friends stay; a QUIZ_ name without a value is an error, not an empty path."""
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise KeyError(f"{name} is not set")
        return env[name]

    return re.sub(r"\$\{(QUIZ_[A-Z0-9_]+)\}", value, text)


def self_signed(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A P-256 certificate for ``host`` and localhost, valid for a day: (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "quiz test edge")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def edge_conf(directory: Path, upstream: str, http_port: int, https_port: int) -> Path:
    """The deploy config, rendered with a fresh certificate, on loopback ports, one worker."""
    cert, key = self_signed(directory)
    shutil.copy(NGINX_DIR / "ffdhe2048.pem", directory / "ffdhe2048.pem")
    text = render((NGINX_DIR / "nginx.conf").read_text(), {
        "QUIZ_TLS_CERT": str(cert), "QUIZ_TLS_KEY": str(key), "QUIZ_TLS_CHAIN": str(cert),
        "QUIZ_RESOLVER": "127.0.0.1"})
    for needle in (HTTP_LISTEN, HTTPS_LISTEN, "server app:8080", "worker_processes auto;"):
        assert needle in text, f"deploy/nginx/nginx.conf no longer has {needle!r}"
    conf = directory / "nginx.conf"
    conf.write_text(text.replace(HTTP_LISTEN, f"listen 127.0.0.1:{http_port};")
                    .replace(HTTPS_LISTEN, f"listen 127.0.0.1:{https_port} ssl http2;")
                    .replace("server app:8080", f"server {upstream}")
                    .replace("worker_processes auto;", "worker_processes 1;"))
    return conf


async def start_nginx(directory: Path, conf: Path, health_url: str) -> asyncio.subprocess.Process:
    """nginx in the foreground, returned once ``health_url`` answers 200 through it."""
    nginx = nginx_binary()
    assert nginx is not None, "nginx is not installed (.ci/run installs nginx-light)"
    proc = await asyncio.create_subprocess_exec(
        nginx, "-p", str(directory), "-c", str(conf), "-g", f"daemon off; pid {directory}/nginx.pid;",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            if proc.returncode is not None:
                err = await proc.stderr.read() if proc.stderr else b""
                raise AssertionError(f"nginx exited: {err.decode(errors='replace')}")
            try:
                async with session.get(health_url, ssl=False) as resp:
                    if resp.status == 200:
                        return proc
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    proc.terminate()
    await proc.wait()
    raise AssertionError("nginx did not come up")
