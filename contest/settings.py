"""Typed settings read once from the environment, with CLI overrides layered on top."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["Settings", "SettingsError"]


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


Number = TypeVar("Number", int, float)


def _number(env: Mapping[str, str], name: str, default: Number, minimum: Number, parse: Callable[[str], Number],
            kind: str) -> Number:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise SettingsError(f"{name} must be {kind}, got {raw!r}") from None
    if not value >= minimum:  # also refuses nan
        raise SettingsError(f"{name} must be >= {minimum}, got {raw!r}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    return _number(env, name, default, minimum, int, "an integer")


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    return _number(env, name, default, minimum, float, "a number")


def _rate(env: Mapping[str, str], name: str, default: tuple[int, int]) -> tuple[int, int]:
    """``COUNT/SECONDS`` (e.g. ``30/60``: 30 requests per minute, bursts of up to 30); ``0`` turns it off."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if raw == "0":
        return (0, 0)
    count, sep, seconds = raw.partition("/")
    try:
        value = (int(count), int(seconds) if sep else 1)
    except ValueError:
        raise SettingsError(f"{name} must be COUNT/SECONDS like 30/60 (or 0 for no limit), got {raw!r}") from None
    if value[0] < 0 or value[1] <= 0:
        raise SettingsError(f"{name} must be COUNT/SECONDS with COUNT >= 0 and SECONDS >= 1, got {raw!r}")
    return value


# Per-subject rate limits: (requests, per seconds). Per-IP ones are flood guards and high (a
# campus NAT or a one-machine load test sends thousands of users from one address).
_RATE_DEFAULTS: dict[str, tuple[int, int]] = {
    "rl_register_ip": (20_000, 60),
    "rl_register_phone": (10, 60),
    "rl_start_user": (30, 60),
    "rl_start_ip": (60_000, 60),
    "rl_answer_user": (60, 10),
    "rl_answer_ip": (600_000, 60),
    # SMS codes cost money and are a brute-force surface: sends and sign-ins per client IP
    "rl_sms_send_ip": (20, 60),
    "rl_sms_login_ip": (300, 60),
    # every send of this deployment: a budget against spraying codes over many phones (docs/security.md)
    "rl_sms_send_all": (6000, 60),
}


def _bool(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be a boolean (1/0/true/false), got {raw!r}")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service reads from its environment, validated once at startup."""

    data_dir: Path = Path("./quiz-data")
    redis_url: str | None = None  # None: start an embedded Valkey in data_dir
    redis_cluster: bool = False
    database_url: str = ""  # "" means sqlite:///<data_dir>/quiz.db
    secret: str = ""
    ticket_secret: str = ""
    admin_token: str = ""
    max_body_bytes: int = 1 << 20
    import_max_bytes: int = 64 << 20
    host: str = "0.0.0.0"
    port: int = 8080
    workers: int = 1
    token_ttl_s: int = 7 * 24 * 3600
    deadline_grace_ms: int = 0
    # a contest day's daily boards (total and per org) expire this long after the day ends; 0: never
    daily_board_keep_s: int = 2 * 86_400
    min_answer_ms: int = 800
    flush_batch: int = 5000
    flush_interval_ms: int = 200
    sweep_interval_ms: int = 500
    live_tick_ms: int = 1000
    run_flusher: bool = True
    run_sweeper: bool = True
    rate_limits: bool = True
    # serve plain answers straight from the protocol (contest/web/answer_lane.py); 0: aiohttp serves all
    answer_lane: bool = True
    # when a start/answer/finish is acknowledged (contest/redis_client.py, docs/security.md):
    # memory | fsync | replica; "" = fsync with the embedded Valkey, memory with QUIZ_REDIS_URL
    ack_durability: str = ""
    ack_timeout_ms: int = 1000  # fsync / replica wait per batch before the batch's calls get 503
    trusted_proxies: tuple[str, ...] = ()
    # the front door's read clocks (contest/web/front_door.py): a head within header_timeout_s, a body
    # within body_timeout_s plus its length at body_min_rate bytes/s, an idle keep-alive connection
    # closed after keepalive_timeout_s; above max_connections the longest-idle one makes room
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    body_min_rate: int = 8192
    keepalive_timeout_s: float = 75.0
    max_connections: int = 20_000
    # a client that leaves its responses unread this long is cut off (nginx's send_timeout)
    send_timeout_s: float = 60.0
    rl_register_ip: tuple[int, int] = _RATE_DEFAULTS["rl_register_ip"]
    rl_register_phone: tuple[int, int] = _RATE_DEFAULTS["rl_register_phone"]
    rl_start_user: tuple[int, int] = _RATE_DEFAULTS["rl_start_user"]
    rl_start_ip: tuple[int, int] = _RATE_DEFAULTS["rl_start_ip"]
    rl_answer_user: tuple[int, int] = _RATE_DEFAULTS["rl_answer_user"]
    rl_answer_ip: tuple[int, int] = _RATE_DEFAULTS["rl_answer_ip"]
    rl_sms_send_ip: tuple[int, int] = _RATE_DEFAULTS["rl_sms_send_ip"]
    rl_sms_login_ip: tuple[int, int] = _RATE_DEFAULTS["rl_sms_login_ip"]
    rl_sms_send_all: tuple[int, int] = _RATE_DEFAULTS["rl_sms_send_all"]
    # sign-in by SMS code (contest/otp.py, contest/sms/): "dev" allows the `log` provider
    env: str = ""
    sms_provider: str = ""  # webhook:URL | aliyun | tencent | log; "" = SMS sign-in off (503)
    sms_webhook_secret: str = ""
    sms_timeout_s: float = 5.0
    sms_retries: int = 2
    sms_code_ttl_s: int = 300
    sms_max_tries: int = 5
    sms_resend_s: int = 60
    sms_daily_cap: int = 10
    sms_vendor: Mapping[str, str] = field(default_factory=dict)  # QUIZ_SMS_ALIYUN_* / QUIZ_SMS_TENCENT_*
    register_requires_sms: bool = False
    phone_pattern: str = r"^1[3-9]\d{9}$"
    staff_token_ttl_s: int = 12 * 3600
    staff_check_s: float = 20.0  # how often each process re-reads disabled staff accounts
    log_level: str = "INFO"
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``env`` (default ``os.environ``); non-None overrides win (CLI flags)."""
        env = os.environ if env is None else env
        data_dir = Path(env.get("QUIZ_DATA_DIR") or "./quiz-data")
        redis_url = env.get("QUIZ_REDIS_URL") or None
        cluster = _bool(env, "QUIZ_REDIS_CLUSTER")
        if redis_url and redis_url.startswith("redis+cluster://"):
            cluster = True
            redis_url = "redis://" + redis_url[len("redis+cluster://"):]
        values: dict[str, Any] = {
            "data_dir": data_dir,
            "redis_url": redis_url,
            "redis_cluster": cluster,
            "database_url": env.get("QUIZ_DATABASE_URL", ""),
            "secret": env.get("QUIZ_SECRET", ""),
            "ticket_secret": env.get("QUIZ_TICKET_SECRET", ""),
            "admin_token": env.get("QUIZ_ADMIN_TOKEN", ""),
            "max_body_bytes": _int(env, "QUIZ_MAX_BODY_BYTES", 1 << 20, minimum=1024),
            "import_max_bytes": _int(env, "QUIZ_IMPORT_MAX_BYTES", 64 << 20, minimum=1024),
            "host": env.get("QUIZ_HOST", "0.0.0.0"),
            "port": _int(env, "QUIZ_PORT", 8080, minimum=0),
            "workers": _int(env, "QUIZ_WORKERS", 1, minimum=1),
            "token_ttl_s": _int(env, "QUIZ_TOKEN_TTL_S", 7 * 24 * 3600, minimum=60),
            "deadline_grace_ms": _int(env, "QUIZ_DEADLINE_GRACE_MS", 0),
            "daily_board_keep_s": _int(env, "QUIZ_DAILY_BOARD_KEEP_S", 2 * 86_400),
            "min_answer_ms": _int(env, "QUIZ_MIN_ANSWER_MS", 800),
            "flush_batch": _int(env, "QUIZ_FLUSH_BATCH", 5000, minimum=1),
            "flush_interval_ms": _int(env, "QUIZ_FLUSH_INTERVAL_MS", 200, minimum=1),
            "sweep_interval_ms": _int(env, "QUIZ_SWEEP_INTERVAL_MS", 500, minimum=10),
            "live_tick_ms": _int(env, "QUIZ_LIVE_TICK_MS", 1000, minimum=50),
            "run_flusher": _bool(env, "QUIZ_RUN_FLUSHER", True),
            "run_sweeper": _bool(env, "QUIZ_RUN_SWEEPER", True),
            "rate_limits": _bool(env, "QUIZ_RATE_LIMITS", True),
            "answer_lane": _bool(env, "QUIZ_ANSWER_LANE", True),
            "ack_durability": env.get("QUIZ_ACK_DURABILITY", "").strip().lower(),
            "ack_timeout_ms": _int(env, "QUIZ_ACK_TIMEOUT_MS", 1000, minimum=1),
            "header_timeout_s": _float(env, "QUIZ_HEADER_TIMEOUT_S", 10.0, minimum=0.1),
            "body_timeout_s": _float(env, "QUIZ_BODY_TIMEOUT_S", 30.0, minimum=0.1),
            "body_min_rate": _int(env, "QUIZ_BODY_MIN_RATE", 8192, minimum=1),
            "keepalive_timeout_s": _float(env, "QUIZ_KEEPALIVE_TIMEOUT_S", 75.0, minimum=0.1),
            "max_connections": _int(env, "QUIZ_MAX_CONNECTIONS", 20_000, minimum=1),
            "send_timeout_s": _float(env, "QUIZ_SEND_TIMEOUT_S", 60.0, minimum=0.1),
            "trusted_proxies": tuple(
                p.strip() for p in env.get("QUIZ_TRUSTED_PROXIES", "").split(",") if p.strip()
            ),
            "env": env.get("QUIZ_ENV", "").strip().lower(),
            "sms_provider": env.get("QUIZ_SMS_PROVIDER", "").strip(),
            "sms_webhook_secret": env.get("QUIZ_SMS_WEBHOOK_SECRET", ""),
            "sms_timeout_s": _float(env, "QUIZ_SMS_TIMEOUT_S", 5.0, minimum=0.1),
            "sms_retries": _int(env, "QUIZ_SMS_RETRIES", 2),
            "sms_code_ttl_s": _int(env, "QUIZ_SMS_CODE_TTL_S", 300, minimum=30),
            "sms_max_tries": _int(env, "QUIZ_SMS_MAX_TRIES", 5, minimum=1),
            "sms_resend_s": _int(env, "QUIZ_SMS_RESEND_S", 60, minimum=1),
            "sms_daily_cap": _int(env, "QUIZ_SMS_DAILY_CAP", 10, minimum=1),
            "sms_vendor": {k: v for k, v in env.items() if k.startswith(("QUIZ_SMS_ALIYUN_", "QUIZ_SMS_TENCENT_"))},
            "register_requires_sms": _bool(env, "QUIZ_REGISTER_REQUIRES_SMS"),
            "phone_pattern": env.get("QUIZ_PHONE_PATTERN") or r"^1[3-9]\d{9}$",
            "staff_token_ttl_s": _int(env, "QUIZ_STAFF_TOKEN_TTL_S", 12 * 3600, minimum=60),
            "staff_check_s": _float(env, "QUIZ_STAFF_CHECK_S", 20.0, minimum=0.05),
            "log_level": env.get("QUIZ_LOG_LEVEL", "INFO").upper(),
            **{name: _rate(env, "QUIZ_" + name.upper(), default) for name, default in _RATE_DEFAULTS.items()},
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError(
                f"QUIZ_REDIS_URL must start with redis://, rediss:// or unix://, got {self.redis_url!r}")
        url = self.effective_database_url
        if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise SettingsError(f"QUIZ_DATABASE_URL must be sqlite:///path or postgresql://..., got {url!r}")
        for entry in self.trusted_proxies:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise SettingsError(f"QUIZ_TRUSTED_PROXIES must list IPs or CIDRs, got {entry!r}") from None
        if self.ack_durability not in ("", "memory", "fsync", "replica"):
            raise SettingsError(f"QUIZ_ACK_DURABILITY must be memory, fsync or replica, got {self.ack_durability!r}")
        self._validate_sms()
        if self.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError(f"QUIZ_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {self.log_level!r}")

    def _validate_sms(self) -> None:
        try:
            re.compile(self.phone_pattern)
        except re.error as exc:
            raise SettingsError(f"QUIZ_PHONE_PATTERN is not a valid regular expression: {exc}") from None
        provider = self.sms_provider
        if provider and provider not in ("log", "aliyun", "tencent") and not provider.startswith("webhook:"):
            raise SettingsError(f"QUIZ_SMS_PROVIDER must be webhook:URL, aliyun, tencent or log, got {provider!r}")
        if provider == "log" and self.env != "dev":
            raise SettingsError("QUIZ_SMS_PROVIDER=log writes codes to the log: only with QUIZ_ENV=dev (quiz demo)")
        needed = {"aliyun": ("ACCESS_KEY_ID", "ACCESS_KEY_SECRET", "SIGN_NAME", "TEMPLATE_CODE"),
                  "tencent": ("SECRET_ID", "SECRET_KEY", "SDK_APP_ID", "SIGN_NAME", "TEMPLATE_ID")}.get(provider, ())
        missing = [f"QUIZ_SMS_{provider.upper()}_{n}" for n in needed
                   if not self.sms_vendor.get(f"QUIZ_SMS_{provider.upper()}_{n}")]
        if missing:
            raise SettingsError(f"QUIZ_SMS_PROVIDER={provider} needs {', '.join(missing)}")
        if provider.startswith("webhook:"):
            url = provider[len("webhook:"):]
            if not url.startswith(("https://", "http://")):
                raise SettingsError(f"QUIZ_SMS_PROVIDER=webhook:URL needs an http(s) URL, got {provider!r}")
            host = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
            # codes cross the network in that request: plain HTTP only to this machine (or in development)
            if url.startswith("http://") and host not in ("127.0.0.1", "localhost", "::1") and self.env != "dev":
                raise SettingsError(f"QUIZ_SMS_PROVIDER=webhook:URL must be https:// (codes travel in it), got {url!r}")
            if not self.sms_webhook_secret:
                raise SettingsError("QUIZ_SMS_PROVIDER=webhook:URL needs QUIZ_SMS_WEBHOOK_SECRET (the HMAC key)")

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'quiz.db').resolve()}"

    @property
    def signing_secret(self) -> bytes:
        """The token-signing key: QUIZ_SECRET, else one generated once and kept in the data dir.

        Every worker process of one deployment must sign with the same key, so the generated
        secret is persisted rather than kept in memory.
        """
        if self.secret:
            return self.secret.encode()
        path = self.data_dir / "secret.key"
        try:
            return path.read_bytes().strip()
        except FileNotFoundError:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            value = secrets.token_hex(32).encode()
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return path.read_bytes().strip()
            with os.fdopen(fd, "wb") as fh:
                fh.write(value)
            return value

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)
