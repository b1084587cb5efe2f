"""E-mail over SMTP (plain, STARTTLS or implicit TLS), one message per notification.

The idempotency key becomes the ``Message-ID`` (and ``X-Idempotency-Key``), so a retried
message is recognisably the same message to the receiving server and mail clients.
SMTP 4xx replies and connection failures are retryable; 5xx replies are not.
"""
from __future__ import annotations

import hashlib
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Literal, Optional

from adapters.notify.ports import Notification, Recipient, fill
from engine.errors import AdapterError

Security = Literal["none", "starttls", "ssl"]


def subject_of(template: str, n: Notification) -> str:
    """The configured subject for an instance's notice; a site-wide one (instance 0: a
    scheduled report, the calendar warning, an audit checkpoint) is titled by its first line."""
    if n.instance_id:
        return fill(template, n.values())
    first = (n.text.splitlines() or [""])[0].strip()
    return f"【{n.site}】{first[:60]}" if n.site else first[:60]


class SmtpNotifier:
    def __init__(self, name: str, host: str, sender: str, port: int = 25, security: Security = "starttls",
                 username: Optional[str] = None, password: Optional[str] = None,
                 subject: str = "【{site}】工单 {instance_id} 通知", timeout: float = 10.0,
                 tls_context: Optional[ssl.SSLContext] = None) -> None:
        self.name, self.host, self.port, self.security = name, host, port, security
        self.sender, self.subject, self.timeout = sender, subject, timeout
        self.username, self.password = username, password
        self.tls_context = tls_context or ssl.create_default_context()

    def reaches(self, recipient: Recipient) -> bool:
        return bool(recipient.email)

    def message(self, n: Notification) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = formataddr((n.recipient.name, n.recipient.email or ""))
        msg["Subject"] = subject_of(self.subject, n)
        msg["Date"] = format_datetime(n.created_at)
        domain = self.sender.rsplit("@", 1)[-1].strip("> ") or "sop.local"
        msg["Message-ID"] = f"<{hashlib.sha256(n.idempotency_key.encode()).hexdigest()[:32]}@{domain}>"
        msg["X-Idempotency-Key"] = n.idempotency_key
        msg.set_content(n.text)
        return msg

    def send(self, n: Notification) -> None:
        if not n.recipient.email:
            raise AdapterError(self.name, f"{n.recipient.staff_id} has no e-mail address", retryable=False)
        msg = self.message(n)
        try:
            if self.security == "ssl":
                client: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                                        context=self.tls_context)
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                if self.security == "starttls":
                    client.starttls(context=self.tls_context)
                if self.username:
                    client.login(self.username, self.password or "")
                client.send_message(msg)
        except smtplib.SMTPRecipientsRefused as e:
            codes = [code for code, _ in e.recipients.values()]
            raise AdapterError(self.name, f"recipient refused (SMTP {', '.join(map(str, codes))})",
                               retryable=all(400 <= c < 500 for c in codes)) from None
        except smtplib.SMTPResponseException as e:
            reason = e.smtp_error.decode("utf-8", "replace") if isinstance(e.smtp_error, bytes) else str(e.smtp_error)
            raise AdapterError(self.name, f"SMTP {e.smtp_code}: {reason[:200]}",
                               retryable=400 <= e.smtp_code < 500) from None
        except (smtplib.SMTPException, OSError) as e:  # connection refused, timeout, TLS failure
            raise AdapterError(self.name, f"{type(e).__name__}: {e}", retryable=True) from None
