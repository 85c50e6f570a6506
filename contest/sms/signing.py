"""Request signatures of the two SMS clouds Chinese organizers use, as their documentation defines
them.  Pure functions (no clock, no randomness, no network): the callers pass the timestamp and
nonce, so tests can replay the vendors' published examples byte for byte.

- Alibaba Cloud RPC signature v1 (``HMAC-SHA1``, query parameter ``Signature``): the scheme of
  ``dysmsapi`` SendSms's own documentation;
- Alibaba Cloud ``ACS3-HMAC-SHA256`` (the "V3" request signature the vendor now recommends);
- Tencent Cloud ``TC3-HMAC-SHA256`` (API 3.0 signature v3).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Mapping

__all__ = [
    "acs3_authorization",
    "aliyun_percent_encode",
    "aliyun_rpc_signature",
    "sha256_hex",
    "tc3_authorization",
]


def aliyun_percent_encode(value: str) -> str:
    """RFC 3986 encoding as Alibaba Cloud wants it: space is %20, ``*`` is %2A, ``~`` stays."""
    return urllib.parse.quote(value, safe="-_.~")


def _canonical_query(params: Mapping[str, str]) -> str:
    enc = aliyun_percent_encode
    return "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(params.items()))


def aliyun_rpc_signature(params: Mapping[str, str], access_key_secret: str, method: str = "GET") -> str:
    """Signature v1 of an RPC call: Base64(HMAC-SHA1(secret + "&", METHOD&%2F&enc(sorted query)))."""
    query = _canonical_query({k: v for k, v in params.items() if k != "Signature"})
    string_to_sign = f"{method}&{aliyun_percent_encode('/')}&{aliyun_percent_encode(query)}"
    digest = hmac.new((access_key_secret + "&").encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def acs3_authorization(*, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str],
                       payload: bytes, access_key_id: str, access_key_secret: str) -> tuple[str, str]:
    """``Authorization`` for ACS3-HMAC-SHA256 and the canonical request it signed.

    ``headers`` are the request's headers; ``host``, ``content-type`` and every ``x-acs-*`` one
    are signed (lower-cased, sorted), as the V3 documentation prescribes.
    """
    signed = {k.lower(): v.strip() for k, v in headers.items()
              if k.lower() in ("host", "content-type") or k.lower().startswith("x-acs-")}
    names = sorted(signed)
    canonical = "\n".join([
        method.upper(), path or "/", _canonical_query(query),
        "".join(f"{name}:{signed[name]}\n" for name in names), ";".join(names), sha256_hex(payload),
    ])
    string_to_sign = "ACS3-HMAC-SHA256\n" + sha256_hex(canonical.encode())
    signature = hmac.new(access_key_secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()
    return (f"ACS3-HMAC-SHA256 Credential={access_key_id},SignedHeaders={';'.join(names)},"
            f"Signature={signature}"), canonical


def _hmac256(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def tc3_authorization(*, secret_id: str, secret_key: str, service: str, host: str, payload: bytes,
                      timestamp: int, content_type: str = "application/json; charset=utf-8",
                      extra_headers: Mapping[str, str] | None = None) -> tuple[str, str]:
    """``Authorization`` for TC3-HMAC-SHA256 (a POST of JSON to ``/``) and its canonical request.

    Signed headers are ``content-type``, ``host`` and any ``extra_headers`` (e.g. ``x-tc-action``).
    """
    headers = {"content-type": content_type, "host": host}
    headers.update({k.lower(): v for k, v in (extra_headers or {}).items()})
    names = sorted(headers)
    canonical = "\n".join([
        "POST", "/", "", "".join(f"{n}:{headers[n].strip().lower() if n == 'x-tc-action' else headers[n].strip()}\n"
                                  for n in names),
        ";".join(names), sha256_hex(payload),
    ])
    date = time.strftime("%Y-%m-%d", time.gmtime(timestamp))
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{sha256_hex(canonical.encode())}"
    key = _hmac256(_hmac256(_hmac256(("TC3" + secret_key).encode(), date), service), "tc3_request")
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return (f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders={';'.join(names)}, "
            f"Signature={signature}"), canonical
