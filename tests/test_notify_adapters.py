"""Each notification adapter against a real receiver on loopback, and the delivery config.

SMTP goes to an aiosmtpd server, the webhook and SMS gateway to an HTTP server; failures
are classified the way retries need them (retryable or not).
"""
from __future__ import annotations

import json
import socket
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from adapters.notify import config
from adapters.notify.file import FileNotifier
from adapters.notify.ports import Notification, Recipient
from adapters.notify.sms import SmsNotifier
from adapters.notify.smtp import SmtpNotifier
from adapters.notify.webhook import WebhookNotifier
from engine.errors import AdapterError, ProcedureError
from test_notify_receivers import HttpReceiver, SmtpHandler, SmtpReceiver

LI = Recipient("li_qiang", "李强", "13800000021", "li.qiang@example.com")
NOTE = Notification("12:3:li_qiang", LI, "投诉单 12（3-1201）已超过答复时限，请督办。", 12,
                    datetime(2025, 9, 30, 18, 0, tzinfo=ZoneInfo("Asia/Shanghai")), "山水庭苑")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def refused(adapter, note: Notification = NOTE) -> AdapterError:  # type: ignore[no-untyped-def]
    with pytest.raises(AdapterError) as e:
        adapter.send(note)
    return e.value


# ------------------------------------------------------------------ SMTP

def test_smtp_delivers_a_message_keyed_by_the_idempotency_key(tmp_path: Path) -> None:
    handler = SmtpHandler()
    with SmtpReceiver(handler, login=("sop", "s3cret-pw")) as rx:
        cfg = tmp_path / "notify.yaml"
        cfg.write_text(f"""
channels:
  email: {{adapter: smtp, host: 127.0.0.1, port: {rx.port}, security: none, username: sop,
          password: "${{SOP_TEST_SMTP_PASSWORD}}", sender: "山水庭苑管理处 <noreply@example.com>"}}
default: [email]
""", encoding="utf-8")
        email = config.load(cfg, env={"SOP_TEST_SMTP_PASSWORD": "s3cret-pw"}).adapters["email"]
        email.send(NOTE)
        email.send(NOTE)  # a retry of the same notification
    first, again = handler.messages
    assert handler.envelopes[0] == ("noreply@example.com", ["li.qiang@example.com"])
    assert first["Subject"] == "【山水庭苑】工单 12 通知" and "李强" in first["To"]
    assert first.get_content().strip() == NOTE.text
    assert first["X-Idempotency-Key"] == NOTE.idempotency_key
    assert first["Message-ID"] == again["Message-ID"]  # the receiver can tell it is the same message


def test_smtp_failures_say_whether_to_retry() -> None:
    handler = SmtpHandler(refuse_rcpt={"li.qiang@example.com": "550 5.1.1 no such user"},
                          data_replies=["451 4.3.0 try again later"])
    with SmtpReceiver(handler) as rx:
        smtp = SmtpNotifier("email", "127.0.0.1", "noreply@example.com", rx.port, "none")
        assert refused(smtp).retryable is False
        handler.refuse_rcpt.clear()
        e = refused(smtp)
        assert e.retryable is True and "451" in str(e)
    assert refused(SmtpNotifier("email", "127.0.0.1", "noreply@example.com", closed_port(), "none")).retryable
    nobody = Notification("k", Recipient("x", "某人"), "hi", 1, NOTE.created_at)
    assert not SmtpNotifier("email", "127.0.0.1", "a@b.c").reaches(nobody.recipient)


# ------------------------------------------------------------------ webhook

def test_webhook_posts_wecom_and_signed_dingtalk_messages_with_the_key() -> None:
    with HttpReceiver() as rx:
        WebhookNotifier("webhook", f"{rx.url}/cgi-bin/webhook/send?key=abc", "wecom").send(NOTE)
        WebhookNotifier("ding", f"{rx.url}/robot/send?access_token=t", "dingtalk", secret="SECabc").send(NOTE)
        WebhookNotifier("plain", f"{rx.url}/hook", "json").send(NOTE)
    wecom, ding, plain = rx.requests
    assert wecom.body == {"msgtype": "text", "text": {"content": NOTE.text, "mentioned_mobile_list": ["13800000021"]}}
    assert wecom.headers["idempotency-key"] == NOTE.idempotency_key
    assert ding.body["at"]["atMobiles"] == ["13800000021"]
    assert "timestamp=" in ding.path and "sign=" in ding.path and "access_token=t" in ding.path
    assert plain.body["to"]["staff"] == "li_qiang" and plain.body["key"] == NOTE.idempotency_key


@pytest.mark.parametrize("answer, retryable", [
    ((500, {"error": "boom"}), True),
    ((429, {}), True),
    ((404, {}), False),
    ((200, {"errcode": 45009, "errmsg": "api freq out of limit"}), True),
    ((200, {"errcode": 93000, "errmsg": "invalid webhook url"}), False),
])
def test_webhook_failures_say_whether_to_retry(answer: tuple[int, dict], retryable: bool) -> None:  # type: ignore[type-arg]
    with HttpReceiver([answer]) as rx:
        assert refused(WebhookNotifier("webhook", rx.url + "/send", "wecom")).retryable is retryable


def test_webhook_unreachable_is_retryable() -> None:
    assert refused(WebhookNotifier("webhook", f"http://127.0.0.1:{closed_port()}/send", timeout=2)).retryable


# ------------------------------------------------------------------ SMS gateway

def test_sms_gateway_gets_the_configured_body_and_text() -> None:
    with HttpReceiver([(200, {"code": "OK"}), (200, {"code": "LIMIT"})]) as rx:
        sms = SmsNotifier("sms", rx.url + "/v1/messages", text="【{site}】{message}",
                          body={"mobile": "{phone}", "content": "{text}", "request_id": "{key}", "sign": "山水"},
                          success_field="code", success_value="OK")
        sms.send(NOTE)
        e = refused(sms)
        form = SmsNotifier("sms", rx.url + "/form", encoding="form")
        form.send(NOTE)
    sent = rx.requests[0]
    assert sent.path == "/v1/messages"
    assert sent.body == {"mobile": "13800000021", "content": f"【山水庭苑】{NOTE.text}",
                         "request_id": NOTE.idempotency_key, "sign": "山水"}
    assert sent.headers["idempotency-key"] == NOTE.idempotency_key
    assert "LIMIT" in str(e) and e.retryable is False
    assert "phone=13800000021" in rx.requests[2].body
    assert not sms.reaches(Recipient("x", "某人", phone=None))


# ------------------------------------------------------------------ file and config

def test_file_adapter_appends_json_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "notifications.jsonl"
    FileNotifier("file", str(out)).send(NOTE)
    FileNotifier("file", str(out)).send(NOTE)
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [x["key"] for x in lines] == [NOTE.idempotency_key] * 2 and lines[0]["to"] == "li_qiang"
    FileNotifier("console").send(NOTE)
    assert "李强" in capsys.readouterr().out


def test_the_shipped_example_config_loads_and_secrets_come_from_the_environment(tmp_path: Path) -> None:
    shipped = config.load(Path(__file__).resolve().parents[1] / "config" / "notify.yaml",
                          env={"SOP_SMTP_PASSWORD": "pw-from-env", "SOP_SMS_TOKEN": "tok-from-env"})
    assert set(shipped.adapters) == {"email", "webhook", "sms", "console"} and shipped.spec.default[0] == "webhook"
    assert "pw-from-env" not in repr(shipped.spec)  # secrets do not show in reprs …
    assert shipped.redact("Authorization: Bearer tok-from-env") == "Authorization: Bearer ***"  # … nor in errors

    literal = tmp_path / "bad.yaml"
    literal.write_text("channels:\n  email: {adapter: smtp, host: h, sender: a@b.c, password: hunter22}\n"
                       "default: [email]\n", encoding="utf-8")
    with pytest.raises(ProcedureError) as e:
        config.load(literal, env={})
    assert "bad.yaml:2:" in str(e.value) and "environment" in str(e.value) and "hunter22" not in str(e.value)

    missing = tmp_path / "missing.yaml"
    missing.write_text("channels:\n  hook: {adapter: webhook, url: '${SOP_HOOK_URL}'}\ndefault: [hook, sms]\n",
                       encoding="utf-8")
    with pytest.raises(ProcedureError) as e:
        config.load(missing, env={})
    assert "SOP_HOOK_URL" in str(e.value)
    with pytest.raises(ProcedureError) as e:
        config.load(missing, env={"SOP_HOOK_URL": "https://example.com/hook"})
    assert "unknown channel(s): sms" in str(e.value)
    assert list(config.load(None).adapters) == ["console"]  # no file: the console, for the demo


def test_smtp_titles_a_site_wide_notice_by_its_first_line() -> None:
    from adapters.notify.smtp import subject_of

    report = Notification("report:dunning:daily_review:2025-09-29T09:30:00+00:00:li_qiang", NOTE.recipient,
                          "催费日报表（2025-09-29）：2 户欠费，请审阅各管家今日催缴记录。\n3-1201（2025-09）尚欠 1280.00 元",
                          0, NOTE.created_at, site="山水庭苑")
    assert subject_of("【{site}】工单 {instance_id} 通知", report) == \
        "【山水庭苑】催费日报表（2025-09-29）：2 户欠费，请审阅各管家今日催缴记录。"
    assert subject_of("【{site}】工单 {instance_id} 通知", NOTE) == "【山水庭苑】工单 12 通知"
