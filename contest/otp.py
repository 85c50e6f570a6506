"""One-time sign-in codes sent by SMS: six digits from ``secrets``, kept in Redis only as an HMAC.

A code lives ``sms_code_ttl_s`` (5 minutes), allows ``sms_max_tries`` (5) wrong tries and is used
up by the right one.  A phone gets one send per ``sms_resend_s`` (60 s) and ``sms_daily_cap`` per
rolling day; client IPs are limited by the rate limiter (``rl_sms_send_ip``, ``rl_sms_login_ip``).
docs/security.md works out what these caps leave an attacker.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass

from contest.errors import RateLimited, Unauthenticated, Unavailable
from contest.redis_client import ScriptRunner
from contest.settings import Settings
from contest.sms.providers import SmsMessage, SmsSender, SmsSendError
from leaderboard import keys
from leaderboard.signin_scripts import SMS_CHECK, SMS_RELEASE, SMS_RESERVE, SMS_STORE, SmsCheckReply, SmsReserveReply

__all__ = ["CODE_RE", "PURPOSES", "SmsCodes", "code_hmac", "new_code"]

log = logging.getLogger(__name__)

PURPOSES = ("login", "register", "staff")
CODE_RE = re.compile(r"^[0-9]{6}$")
_DAY_MS = 86_400_000


def new_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def code_hmac(secret: bytes, purpose: str, phone: str, code: str) -> str:
    """What Redis keeps of a code: bound to its phone and purpose, useless without the secret."""
    key = hmac.new(secret, b"sms-code", hashlib.sha256).digest()  # not the token-signing key itself
    return hmac.new(key, f"{purpose}|{phone}|{code}".encode(), hashlib.sha256).hexdigest()


@dataclass(slots=True)
class SmsCodes:
    runner: ScriptRunner
    settings: Settings
    sender: SmsSender | None

    def _hmac(self, purpose: str, phone: str, code: str) -> str:
        return code_hmac(self.settings.signing_secret, purpose, phone, code)

    async def send(self, phone: str, purpose: str, *, deliver: bool = True) -> int:
        """Send a new code to ``phone``; returns the seconds until the next send is allowed.

        429 over the resend or daily cap, 503 when SMS is off or the provider failed (then no
        code is stored and the send slot is given back).  ``deliver=False`` (a staff code asked for
        a phone that is no active account) takes the send slot and answers alike, but sends and
        stores nothing: the caps and answers cannot tell staff phones from others.
        """
        if self.sender is None:
            raise Unavailable("短信服务未配置，暂不能发送验证码", {"reason": "sms_disabled"})
        s = self.settings
        cool, day = keys.sms_cooldown(phone), keys.sms_daily(phone)
        slot = SmsReserveReply.from_reply(
            await self.runner.run(SMS_RESERVE, (cool, day), (s.sms_resend_s * 1000, s.sms_daily_cap, _DAY_MS)))
        if not slot.taken:
            if slot.refused_by == "resend":
                raise RateLimited("验证码发送太频繁，请稍后再试", "sms_resend", slot.retry_after_ms)
            raise RateLimited("今天发送验证码次数已达上限，请明天再试", "sms_daily", slot.retry_after_ms)
        if not deliver:
            return s.sms_resend_s
        code = new_code()
        expires_at = int((time.time() + s.sms_code_ttl_s) * 1000)
        try:
            await self.sender.send(SmsMessage(phone, code, purpose, expires_at))
        except (SmsSendError, ValueError) as exc:
            log.warning("sms send to %s failed: %s", phone[:3] + "****" + phone[-4:], exc)
            await self.runner.run(SMS_RELEASE, (cool, day), ())
            raise Unavailable("短信发送失败，请稍后再试", {"reason": "sms_send_failed"}) from None
        await self.runner.run(SMS_STORE, (keys.sms_code(phone, purpose),),
                              (self._hmac(purpose, phone, code), s.sms_max_tries, s.sms_code_ttl_s * 1000))
        return s.sms_resend_s

    async def check(self, phone: str, purpose: str, code: str) -> None:
        """Use up the right code; 401 invalid_code with the tries left otherwise."""
        verdict = SmsCheckReply.from_reply(await self.runner.run(SMS_CHECK, (keys.sms_code(phone, purpose),),
                                                                 (self._hmac(purpose, phone, code),)))
        if verdict.right:
            return
        left = verdict.tries_left
        if left < 0:
            raise Unauthenticated("验证码无效或已过期，请重新获取", {"tries_left": 0, "expired": True},
                                  code="invalid_code")
        message = f"验证码错误，还可以再试 {left} 次" if left else "验证码错误次数过多，请重新获取"
        raise Unauthenticated(message, {"tries_left": left}, code="invalid_code")
