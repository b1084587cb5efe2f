"""Delivery configuration: one YAML file naming the channels, the default order and retries.

Secrets never live in the file: write ``${SOP_SMTP_PASSWORD}`` (required) or
``${NAME:-default}`` (optional) and the value comes from the environment when the file
is loaded. ``password`` and ``secret`` keys must be such references. Every value taken
from the environment is remembered by :class:`Redactor`, which the dispatcher runs over
each error before it is stored or logged, so a webhook URL with its key or a password in
a server's reply never reaches the log.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from typing_extensions import Annotated

from adapters.notify.file import FileNotifier
from adapters.notify.ports import Notifier
from adapters.notify.sms import DEFAULT_BODY, SmsNotifier
from adapters.notify.smtp import SmtpNotifier
from adapters.notify.webhook import WebhookNotifier
from engine.errors import Issue, ProcedureError
from engine.spec.validation import issues_from_validation
from engine.spec.yamlio import Positions, load_file

_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
SECRET_KEYS = ("password", "secret")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SmtpSpec(Strict):
    adapter: Literal["smtp"]
    host: str
    port: int = Field(25, ge=1, le=65535)
    security: Literal["none", "starttls", "ssl"] = "starttls"
    username: Optional[str] = None
    password: Optional[SecretStr] = None
    sender: str = Field(description="From: header, e.g. 山水庭苑管理处 <noreply@example.com>")
    subject: str = "【{site}】工单 {instance_id} 通知"
    timeout: float = Field(10.0, gt=0, le=120)


class WebhookSpec(Strict):
    adapter: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    style: Literal["wecom", "dingtalk", "json"] = "wecom"
    secret: Optional[SecretStr] = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(10.0, gt=0, le=120)


class SmsSpec(Strict):
    adapter: Literal["sms"]
    url: str = Field(pattern=r"^https?://")
    method: Literal["POST", "GET"] = "POST"
    encoding: Literal["json", "form"] = "json"
    headers: dict[str, str] = Field(default_factory=dict)
    text: str = Field("{message}", description="The SMS text, e.g. 【山水庭苑】{message}")
    body: dict[str, Any] = Field(default_factory=lambda: dict(DEFAULT_BODY))
    success_field: Optional[str] = None
    success_value: Any = None
    timeout: float = Field(10.0, gt=0, le=120)


class FileSpec(Strict):
    adapter: Literal["file"]
    path: str = "-"


ChannelSpec = Annotated[Union[SmtpSpec, WebhookSpec, SmsSpec, FileSpec], Field(discriminator="adapter")]


class RetrySpec(Strict):
    max_attempts: int = Field(8, ge=1, le=100)
    backoff_seconds: float = Field(30.0, gt=0, description="Wait after the first failure; doubles each time")
    max_backoff_seconds: float = Field(3600.0, gt=0)


class DeliverySpec(Strict):
    channels: dict[str, ChannelSpec]
    default: list[str] = Field(min_length=1, description="Channels tried in order when a notification names "
                                                         "none, or the one it names cannot reach the person")
    retry: RetrySpec = Field(default_factory=RetrySpec)
    lease_seconds: float = Field(120.0, gt=0, allow_inf_nan=False, description="How long a claimed notification is this worker's")
    batch: int = Field(50, ge=1, le=1000)
    poll_seconds: float = Field(2.0, ge=0.01, le=3600, allow_inf_nan=False)
    after_crash: Literal["resend", "hold"] = Field(
        "resend", description="A notification whose worker died mid-delivery: send again (the receiver "
                              "deduplicates by key) or hold it for a person")

    @model_validator(mode="after")
    def _known_channels(self) -> "DeliverySpec":
        unknown = [c for c in self.default if c not in self.channels]
        if unknown:
            raise ValueError(f"default names unknown channel(s): {', '.join(unknown)}")
        return self


class Redactor:
    """Replaces every value loaded from the environment, and every key-like piece of one
    (a robot URL's ``key=…``, the token after ``Bearer``), with ``***``."""

    _SPLIT = re.compile(r"[\s?&=/:@,;]+")

    def __init__(self, secrets: set[str]) -> None:
        pieces = set(secrets)
        for s in secrets:
            pieces.update(p for p in self._SPLIT.split(s)
                          if len(p) >= 20 or (len(p) >= 8 and any(c.isdigit() for c in p)))
        self.secrets = sorted((s for s in pieces if len(s) >= 4), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, "***")
        return text


@dataclass
class Delivery:
    """The loaded configuration: settings, one adapter per channel, and the redactor."""

    spec: DeliverySpec
    adapters: dict[str, Notifier]
    redact: Redactor = field(default_factory=lambda: Redactor(set()))


CONSOLE = {"channels": {"console": {"adapter": "file", "path": "-"}}, "default": ["console"]}


def _substitute(value: Any, path: tuple[Any, ...], env: Mapping[str, str], secrets: set[str], pos: Positions,
                issues: list[Issue]) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, path + (k,), env, secrets, pos, issues) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, path + (i,), env, secrets, pos, issues) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value
    if path and path[-1] in SECRET_KEYS and not _REF.fullmatch(value):
        issues.append(pos.issue(path, f"{path[-1]} must come from the environment, e.g. ${{SOP_SMTP_PASSWORD}}"))
        return value

    def one(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            secrets.add(env[name])
            return env[name]
        if default is not None:
            return default
        issues.append(pos.issue(path, f"environment variable {name} is not set"))
        return ""

    return _REF.sub(one, value)


def _build(name: str, c: Any) -> Notifier:
    if isinstance(c, SmtpSpec):
        return SmtpNotifier(name, c.host, c.sender, c.port, c.security, c.username,
                            c.password.get_secret_value() if c.password else None, c.subject, c.timeout)
    if isinstance(c, WebhookSpec):
        return WebhookNotifier(name, c.url, c.style, c.secret.get_secret_value() if c.secret else None,
                               c.headers, c.timeout)
    if isinstance(c, SmsSpec):
        return SmsNotifier(name, c.url, c.text, c.body, c.method, c.encoding, c.headers, c.success_field,
                           c.success_value, c.timeout)
    return FileNotifier(name, c.path)


def from_data(data: Any, pos: Positions, env: Optional[Mapping[str, str]] = None) -> Delivery:
    env = os.environ if env is None else env
    issues: list[Issue] = []
    secrets: set[str] = set()
    if not isinstance(data, dict):
        raise ProcedureError([pos.issue((), "expected a mapping at the top level")])
    data = _substitute(data, (), env, secrets, pos, issues)
    if issues:
        raise ProcedureError(issues)
    try:
        spec = DeliverySpec.model_validate(data)
    except ValidationError as e:
        raise ProcedureError(issues_from_validation(e, pos, DeliverySpec)) from None
    return Delivery(spec, {name: _build(name, c) for name, c in spec.channels.items()}, Redactor(secrets))


def load(path: Optional[str | Path], env: Optional[Mapping[str, str]] = None) -> Delivery:
    """The configuration in ``path``; with no path, everything goes to the console."""
    if path is None:
        return from_data(CONSOLE, Positions("<built-in console configuration>"), env)
    data, pos = load_file(path)
    return from_data(data, pos, env)
