"""Webhook: a JSON POST to a group robot (WeCom 企业微信, DingTalk 钉钉) or any receiver.

Styles:
- ``wecom``: ``{"msgtype": "text", "text": {"content", "mentioned_mobile_list"}}``;
- ``dingtalk``: ``{"msgtype": "text", "text": {"content"}, "at": {"atMobiles"}}``, signed
  with ``timestamp`` and ``sign`` (HMAC-SHA256 of ``timestamp\\nsecret``) when a secret is set;
- ``json``: the notification itself (``key``, ``to``, ``text``, ``instance_id``, ``created_at``).

Every request carries ``Idempotency-Key``. Robots answer HTTP 200 with ``errcode``; a
non-zero one is a failure, retryable only for rate limits and "system busy".
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any, Literal, Optional

import httpx

from adapters.notify.http import call, json_body
from adapters.notify.ports import Notification, Recipient
from engine.errors import AdapterError

Style = Literal["wecom", "dingtalk", "json"]
RETRYABLE_ERRCODES = {-1, 45009, 45033, 130101}  # busy; WeCom and DingTalk rate limits


class WebhookNotifier:
    def __init__(self, name: str, url: str, style: Style = "wecom", secret: Optional[str] = None,
                 headers: Optional[dict[str, str]] = None, timeout: float = 10.0,
                 client: Optional[httpx.Client] = None) -> None:
        self.name, self.url, self.style, self.secret = name, url, style, secret
        self.headers = dict(headers or {})
        self.client = client or httpx.Client(timeout=timeout)

    def reaches(self, recipient: Recipient) -> bool:
        return True  # a group robot reaches everyone in the group; the person is mentioned by phone

    def payload(self, n: Notification) -> dict[str, Any]:
        phones = [n.recipient.phone] if n.recipient.phone else []
        if self.style == "wecom":
            return {"msgtype": "text", "text": {"content": n.text, "mentioned_mobile_list": phones}}
        if self.style == "dingtalk":
            return {"msgtype": "text", "text": {"content": n.text}, "at": {"atMobiles": phones, "isAtAll": False}}
        r = n.recipient
        return {"key": n.idempotency_key, "instance_id": n.instance_id, "created_at": n.created_at.isoformat(),
                "to": {"staff": r.staff_id, "name": r.name, "phone": r.phone, "email": r.email}, "text": n.text}

    def _signature(self) -> dict[str, str]:
        if self.style != "dingtalk" or not self.secret:
            return {}
        stamp = str(int(time.time() * 1000))
        digest = hmac.new(self.secret.encode(), f"{stamp}\n{self.secret}".encode(), hashlib.sha256).digest()
        return {"timestamp": stamp, "sign": base64.b64encode(digest).decode()}

    def send(self, n: Notification) -> None:
        headers = {**self.headers, "Idempotency-Key": n.idempotency_key}
        response = call(self.client, self.name, "POST", self.url, json=self.payload(n), headers=headers,
                        params=self._signature() or None)
        body = json_body(response)
        code = body.get("errcode") if isinstance(body, dict) else None
        if code not in (None, 0):
            raise AdapterError(self.name, f"errcode {code}: {str(body.get('errmsg', ''))[:200]}",
                               retryable=code in RETRYABLE_ERRCODES)
