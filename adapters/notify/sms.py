"""SMS through an HTTP gateway: the URL, headers, body template and message template are
configuration, so any provider's "send" call can be described without code.

The body template is JSON-like; ``{phone}``, ``{text}`` (the message after the ``text``
template, e.g. ``【山水庭苑】{message}``), ``{key}`` (the idempotency key, for the
gateway's request id), ``{name}`` and ``{instance_id}`` are filled in every string.
A 2xx answer is success unless ``success_field`` is set and differs from ``success_value``.
"""
from __future__ import annotations

from typing import Any, Literal, Optional

import httpx

from adapters.notify.http import call, json_body
from adapters.notify.ports import Notification, Recipient, fill
from engine.errors import AdapterError

DEFAULT_BODY = {"phone": "{phone}", "content": "{text}", "request_id": "{key}"}


class SmsNotifier:
    def __init__(self, name: str, url: str, text: str = "{message}", body: Optional[dict[str, Any]] = None,
                 method: Literal["POST", "GET"] = "POST", encoding: Literal["json", "form"] = "json",
                 headers: Optional[dict[str, str]] = None, success_field: Optional[str] = None,
                 success_value: Any = None, timeout: float = 10.0, client: Optional[httpx.Client] = None) -> None:
        self.name, self.url, self.text, self.method, self.encoding = name, url, text, method, encoding
        self.body = dict(body if body is not None else DEFAULT_BODY)
        self.headers = dict(headers or {})
        self.success_field, self.success_value = success_field, success_value
        self.client = client or httpx.Client(timeout=timeout)

    def reaches(self, recipient: Recipient) -> bool:
        return bool(recipient.phone)

    def request_body(self, n: Notification) -> dict[str, Any]:
        values = n.values()
        values["text"] = fill(self.text, values)
        return fill(self.body, values)

    def send(self, n: Notification) -> None:
        body = self.request_body(n)
        headers = {**self.headers, "Idempotency-Key": n.idempotency_key}
        if self.method == "GET":
            response = call(self.client, self.name, "GET", self.url, params=body, headers=headers)
        elif self.encoding == "form":
            response = call(self.client, self.name, "POST", self.url, data=body, headers=headers)
        else:
            response = call(self.client, self.name, "POST", self.url, json=body, headers=headers)
        if self.success_field:
            answer = json_body(response)
            got = answer.get(self.success_field) if isinstance(answer, dict) else None
            if str(got) != str(self.success_value):
                raise AdapterError(self.name, f"gateway answered {self.success_field}={got!r}", retryable=False)
