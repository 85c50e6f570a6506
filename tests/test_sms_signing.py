"""Request signing of the SMS clouds against the examples published in the vendors' documentation.

Every expected value below is copied from the vendor's own worked example (the documents named in
each test); the inputs are the documented ones, secrets included (Tencent's are masked in its
document and signed as printed).
"""

from __future__ import annotations

from contest.sms.signing import (
    acs3_authorization,
    aliyun_percent_encode,
    aliyun_rpc_signature,
    sha256_hex,
    tc3_authorization,
)

# Alibaba Cloud SMS (dysmsapi) "签名机制" worked example for SendSms, RPC signature v1
SEND_SMS_EXAMPLE = {
    "AccessKeyId": "testId", "Action": "SendSms", "Format": "XML", "OutId": "123",
    "PhoneNumbers": "15300000001", "RegionId": "cn-hangzhou", "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0", "TemplateCode": "SMS_71390007", "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z", "Version": "2017-05-25",
}


def test_aliyun_rpc_v1_send_sms_example() -> None:
    assert aliyun_rpc_signature(SEND_SMS_EXAMPLE, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    # a Signature already in the parameters is not signed
    assert aliyun_rpc_signature({**SEND_SMS_EXAMPLE, "Signature": "x"}, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_aliyun_rpc_v1_describe_regions_example() -> None:
    # the RPC "signature mechanism" page's DescribeRegions example
    params = {"Format": "XML", "AccessKeyId": "testid", "Action": "DescribeRegions", "SignatureMethod": "HMAC-SHA1",
              "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "SignatureVersion": "1.0",
              "Version": "2014-05-26", "Timestamp": "2016-02-23T12:46:24Z"}
    assert aliyun_rpc_signature(params, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_aliyun_percent_encoding_rules() -> None:
    assert aliyun_percent_encode(" *~/") == "%20%2A~%2F"
    assert aliyun_percent_encode("阿") == "%E9%98%BF"


def test_aliyun_acs3_v3_example() -> None:
    # "V3版本请求体&签名机制": RunInstances on ecs.cn-shanghai with an empty body
    headers = {"host": "ecs.cn-shanghai.aliyuncs.com", "x-acs-action": "RunInstances", "x-acs-version": "2014-05-26",
               "x-acs-date": "2023-10-26T10:22:32Z", "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
               "x-acs-content-sha256": sha256_hex(b"")}
    query = {"ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd", "RegionId": "cn-shanghai"}
    auth, canonical = acs3_authorization(method="POST", path="/", query=query, headers=headers, payload=b"",
                                         access_key_id="YourAccessKeyId", access_key_secret="YourAccessKeySecret")
    assert sha256_hex(canonical.encode()) == "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
    assert auth == ("ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;"
                    "x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
                    "Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0")


def test_tencent_tc3_example() -> None:
    # Tencent Cloud API 3.0 "Signature v3": DescribeInstances of cvm, timestamp 1551113065
    payload = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    auth, canonical = tc3_authorization(secret_id="AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******",
                                        secret_key="Gu5t9xGARNpq86cd98joQYCN3*******", service="cvm",
                                        host="cvm.tencentcloudapi.com", payload=payload, timestamp=1551113065)
    assert sha256_hex(payload) == "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    assert sha256_hex(canonical.encode()) == "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
    assert auth == ("TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, "
                    "SignedHeaders=content-type;host, "
                    "Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c")
