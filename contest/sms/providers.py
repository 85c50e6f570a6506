"""The senders of sign-in codes, chosen by QUIZ_SMS_PROVIDER.

- ``webhook:URL``: a JSON POST to the organizer's own SMS gateway, signed with
  QUIZ_SMS_WEBHOOK_SECRET (``X-Quiz-Signature: sha256=<hex HMAC of "<timestamp>.<body>">``);
- ``aliyun``: Alibaba Cloud SMS ``SendSms`` (dysmsapi 2017-05-25), ACS3-HMAC-SHA256 signed;
- ``tencent``: Tencent Cloud SMS ``SendSms`` (2021-01-11), TC3-HMAC-SHA256 signed;
- ``log``: the code in the server log (QUIZ_ENV=dev only: ``quiz demo``).

Each HTTP sender has a timeout per try and retries connection failures and 5xx answers with a
short backoff; a 4xx or a vendor error code is final.  A failure raises ``SmsSendError``; the
caller stores no code then and answers 503.  Vendors' settings come from QUIZ_SMS_ALIYUN_* and
QUIZ_SMS_TENCENT_* (see docs/security.md); ``*_ENDPOINT`` points a sender elsewhere (a test
receiver, a private-network endpoint).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import orjson

from contest.settings import Settings
from contest.sms.signing import acs3_authorization, sha256_hex, tc3_authorization
from contest.sms.signing import aliyun_percent_encode as enc

__all__ = ["SmsMessage", "SmsSendError", "SmsSender", "make_sender", "webhook_signature"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SmsMessage:
    phone: str  # 11 digits, normalized
    code: str
    purpose: str  # login | register | staff
    expires_at: int  # ms


class SmsSendError(RuntimeError):
    """The provider did not take the message (after its retries)."""


class SmsSender(Protocol):
    name: str

    async def send(self, message: SmsMessage) -> None: ...


class _Retry(Exception):
    """A failure worth another try (connection trouble, 5xx, timeout)."""


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """What the receiving gateway recomputes: ``sha256=`` + hex HMAC-SHA256 of ``timestamp.body``."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class _HttpSender:
    name = "http"

    def __init__(self, session: aiohttp.ClientSession, timeout_s: float, retries: int) -> None:
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.retries = retries

    async def _post(self, url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        try:
            async with self.session.post(url, data=body, headers=dict(headers), timeout=self.timeout,
                                         allow_redirects=False) as resp:
                data = await resp.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _Retry(f"{type(exc).__name__}: {exc}") from None
        if resp.status >= 500:
            raise _Retry(f"HTTP {resp.status}")
        return resp.status, data

    async def _attempts(self, message: SmsMessage) -> None:
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(min(2.0, 0.2 * 2 ** (attempt - 1)))
            try:
                await self._once(message)
                return
            except _Retry as exc:
                last = str(exc)
                log.warning("sms %s: try %d failed: %s", self.name, attempt + 1, last)
        raise SmsSendError(f"{self.name}: {last}")

    async def send(self, message: SmsMessage) -> None:
        await self._attempts(message)

    async def _once(self, message: SmsMessage) -> None:
        raise NotImplementedError


class WebhookSender(_HttpSender):
    name = "webhook"

    def __init__(self, session: aiohttp.ClientSession, url: str, secret: str, timeout_s: float,
                 retries: int) -> None:
        super().__init__(session, timeout_s, retries)
        self.url = url
        self.secret = secret

    async def _once(self, message: SmsMessage) -> None:
        body = orjson.dumps({"phone": message.phone, "code": message.code, "purpose": message.purpose,
                             "expires_at": message.expires_at})
        timestamp = str(int(time.time()))
        status, data = await self._post(self.url, body, {
            "Content-Type": "application/json", "X-Quiz-Timestamp": timestamp,
            "X-Quiz-Signature": webhook_signature(self.secret, timestamp, body)})
        if not 200 <= status < 300:
            raise SmsSendError(f"webhook: HTTP {status}: {data[:200]!r}")


def _need(vendor: Mapping[str, str], prefix: str, *names: str) -> dict[str, str]:
    values = {n: vendor.get(prefix + n, "") for n in names}
    missing = [prefix + n for n, v in values.items() if not v]
    if missing:
        raise ValueError(f"QUIZ_SMS_PROVIDER needs {', '.join(missing)}")
    return values


class AliyunSender(_HttpSender):
    """Alibaba Cloud SMS SendSms with the V3 request signature (ACS3-HMAC-SHA256)."""

    name = "aliyun"
    _PREFIX = "QUIZ_SMS_ALIYUN_"

    def __init__(self, session: aiohttp.ClientSession, vendor: Mapping[str, str], timeout_s: float,
                 retries: int) -> None:
        super().__init__(session, timeout_s, retries)
        self.conf = _need(vendor, self._PREFIX, "ACCESS_KEY_ID", "ACCESS_KEY_SECRET", "SIGN_NAME", "TEMPLATE_CODE")
        self.endpoint = vendor.get(self._PREFIX + "ENDPOINT") or "https://dysmsapi.aliyuncs.com"

    async def _once(self, message: SmsMessage) -> None:
        query = {"PhoneNumbers": message.phone, "SignName": self.conf["SIGN_NAME"],
                 "TemplateCode": self.conf["TEMPLATE_CODE"],
                 "TemplateParam": orjson.dumps({"code": message.code}).decode()}
        host = self.endpoint.split("://", 1)[-1].split("/", 1)[0]
        headers = {"host": host, "x-acs-action": "SendSms", "x-acs-version": "2017-05-25",
                   "x-acs-date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "x-acs-signature-nonce": secrets.token_hex(16), "x-acs-content-sha256": sha256_hex(b"")}
        auth, _ = acs3_authorization(method="POST", path="/", query=query, headers=headers, payload=b"",
                                     access_key_id=self.conf["ACCESS_KEY_ID"],
                                     access_key_secret=self.conf["ACCESS_KEY_SECRET"])
        url = self.endpoint.rstrip("/") + "/?" + "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(query.items()))
        status, data = await self._post(url, b"", {**headers, "Authorization": auth})
        reply = _json(data)
        if status != 200 or reply.get("Code") != "OK":
            raise SmsSendError(f"aliyun: HTTP {status} {reply.get('Code')}: {reply.get('Message')}")


class TencentSender(_HttpSender):
    """Tencent Cloud SMS SendSms with the TC3-HMAC-SHA256 signature."""

    name = "tencent"
    _PREFIX = "QUIZ_SMS_TENCENT_"

    def __init__(self, session: aiohttp.ClientSession, vendor: Mapping[str, str], timeout_s: float,
                 retries: int) -> None:
        super().__init__(session, timeout_s, retries)
        self.conf = _need(vendor, self._PREFIX, "SECRET_ID", "SECRET_KEY", "SDK_APP_ID", "SIGN_NAME", "TEMPLATE_ID")
        self.region = vendor.get(self._PREFIX + "REGION") or "ap-guangzhou"
        self.endpoint = vendor.get(self._PREFIX + "ENDPOINT") or "https://sms.tencentcloudapi.com"

    async def _once(self, message: SmsMessage) -> None:
        minutes = str(max(1, round((message.expires_at / 1000 - time.time()) / 60)))
        body = orjson.dumps({"PhoneNumberSet": ["+86" + message.phone], "SmsSdkAppId": self.conf["SDK_APP_ID"],
                             "SignName": self.conf["SIGN_NAME"], "TemplateId": self.conf["TEMPLATE_ID"],
                             "TemplateParamSet": [message.code, minutes]})
        host = self.endpoint.split("://", 1)[-1].split("/", 1)[0]
        timestamp = int(time.time())
        auth, _ = tc3_authorization(secret_id=self.conf["SECRET_ID"], secret_key=self.conf["SECRET_KEY"],
                                    service="sms", host=host, payload=body, timestamp=timestamp)
        status, data = await self._post(self.endpoint, body, {
            "Authorization": auth, "Content-Type": "application/json; charset=utf-8", "Host": host,
            "X-TC-Action": "SendSms", "X-TC-Version": "2021-01-11", "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": self.region})
        response = _json(data).get("Response") or {}
        statuses = response.get("SendStatusSet") or [{}]
        if status != 200 or "Error" in response or statuses[0].get("Code") != "Ok":
            error = response.get("Error") or statuses[0]
            raise SmsSendError(f"tencent: HTTP {status} {error.get('Code')}: {error.get('Message')}")


class LogSender:
    """Development only: the code goes to the server log (never with QUIZ_ENV other than dev)."""

    name = "log"

    async def send(self, message: SmsMessage) -> None:
        log.warning("DEV SMS to %s (%s): code %s", message.phone, message.purpose, message.code)


def _json(data: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def make_sender(settings: Settings, session: aiohttp.ClientSession) -> SmsSender | None:
    """The configured sender; None when SMS sign-in is off (QUIZ_SMS_PROVIDER unset)."""
    provider = settings.sms_provider
    timeout, retries = settings.sms_timeout_s, settings.sms_retries
    if not provider:
        return None
    if provider == "log":
        return LogSender()
    if provider.startswith("webhook:"):
        return WebhookSender(session, provider[len("webhook:"):], settings.sms_webhook_secret, timeout, retries)
    if provider == "aliyun":
        return AliyunSender(session, settings.sms_vendor, timeout, retries)
    if provider == "tencent":
        return TencentSender(session, settings.sms_vendor, timeout, retries)
    raise ValueError(f"unknown QUIZ_SMS_PROVIDER {provider!r}")
