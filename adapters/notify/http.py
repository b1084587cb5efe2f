"""One HTTP call for the webhook and SMS adapters: transport errors and refusals mapped once.

Robot and gateway URLs carry their keys (``?key=…``, ``access_token=…``), and httpx logs
every request's full URL at INFO; a filter on its logger shortens any URL it logs to the
scheme, host and port, so running with INFO logging never writes a key to the log.
"""
from __future__ import annotations

import logging
from typing import Any, Optional

import httpx

from adapters.notify.ports import http_failure
from engine.errors import AdapterError


def call(client: httpx.Client, adapter: str, method: str, url: str, *, json: Any = None,
         data: Optional[dict[str, Any]] = None, params: Optional[dict[str, Any]] = None,
         headers: Optional[dict[str, str]] = None) -> httpx.Response:
    """The response if it is 2xx; otherwise AdapterError (a timeout or 5xx is retryable)."""
    target = httpx.URL(url).copy_merge_params(params) if params else url  # keep the URL's own query (tokens)
    try:
        response = client.request(method, target, json=json, data=data, headers=headers)
    except httpx.HTTPError as e:  # connection refused, timeout, protocol error: the receiver may be back soon
        raise AdapterError(adapter, f"{type(e).__name__}: {e}", retryable=True) from None
    if not 200 <= response.status_code < 300:
        raise http_failure(adapter, response.status_code, response.text)
    return response


def json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _without_secrets(record: logging.LogRecord) -> bool:
    if isinstance(record.args, tuple):
        record.args = tuple(f"{a.scheme}://{a.netloc.decode('ascii', 'replace').rsplit('@', 1)[-1]}/…"
                            if isinstance(a, httpx.URL) else a for a in record.args)
    return True


logging.getLogger("httpx").addFilter(_without_secrets)
