"""The outbox dispatcher: notifications the workflow queued reach a real receiver once,
failures retry with backoff (time advanced, never slept), a dead worker's delivery is
finished by the next one under the same key, and nothing here touches the workflow."""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest

from adapters.notify import config
from adapters.notify.ports import Notification, Recipient
from cli import main
from engine.runtime.outbox import Dispatcher, OutboxWorker
from engine.spec.yamlio import Positions
from engine.store import outbox as store
from tests.api_support import COMPLAINT
from test_notify_receivers import HttpReceiver


def delivery(url: str, env: dict[str, str] | None = None, **settings: Any) -> config.Delivery:
    data = {"channels": {"webhook": {"adapter": "webhook", "url": url, "style": "json"}},
            "default": ["webhook"], **settings}
    return config.from_data(data, Positions("<test>"), env or {})


def repeat_complaint(engine: Any) -> int:
    """A repeated complaint notifies the supervisor (CMP-10): one outbox row for li_qiang."""
    first = engine.start("complaint", "liu_fang", COMPLAINT)
    return engine.start("complaint", "liu_fang", {**COMPLAINT, "repeat_of": first.id}).id


def outbox(engine: Any) -> list[Any]:
    with engine.read() as conn:
        return store.rows(conn)


def attempts(engine: Any, row_id: int) -> list[tuple[int, str]]:
    with engine.read() as conn:
        return [(a.attempt, a.outcome) for a in store.attempts_of(conn, row_id)]


def test_a_workflow_notification_reaches_the_receiver_once(engine: Any) -> None:
    iid = repeat_complaint(engine)
    [row] = outbox(engine)
    assert (row.recipient, row.status) == ("li_qiang", "pending")
    with HttpReceiver() as rx:
        d = Dispatcher(engine, delivery(rx.url + "/hook"))
        assert d.run_once().sent == 1
        assert d.run_once().claimed == 0
    [got] = rx.requests
    assert got.headers["idempotency-key"] == row.idempotency_key
    assert got.body["to"]["staff"] == "li_qiang" and "重复投诉" in got.body["text"] and got.body["instance_id"] == iid
    assert outbox(engine)[0].status == "sent" and attempts(engine, row.id) == [(1, "sent")]


def test_failures_back_off_and_never_block_or_undo_the_workflow(engine: Any) -> None:
    iid = repeat_complaint(engine)
    [row] = outbox(engine)
    with HttpReceiver([(503, {}), (500, {})]) as rx:
        d = Dispatcher(engine, delivery(rx.url + "/hook"))
        assert d.run_once().retrying == 1
        first_wait = d.backoff(1, row.idempotency_key)
        assert timedelta(seconds=30) <= first_wait <= timedelta(seconds=37.5)
        assert outbox(engine)[0].next_attempt_at == engine.clock.now() + first_wait

        engine.advance(iid, "investigate", "chen_jing")  # the workflow goes on meanwhile
        assert d.run_once().claimed == 0  # not due yet
        engine.clock.advance(first_wait)
        assert d.run_once().retrying == 1
        second_wait = d.backoff(2, row.idempotency_key)
        assert second_wait > first_wait
        engine.clock.advance(second_wait)
        assert d.run_once().sent == 1
    assert len(rx.requests) == 3 and len(rx.delivered) == 1
    assert attempts(engine, row.id) == [(1, "retry"), (2, "retry"), (3, "sent")]
    assert "HTTP 500" in (outbox(engine)[0].last_error or "") or outbox(engine)[0].last_error is None
    assert engine.show(iid).state == "investigating" and engine.replay(iid).ok


def test_permanent_refusals_and_exhausted_retries_fail_and_can_be_requeued(engine: Any, runner: Any) -> None:
    repeat_complaint(engine)
    repeat_complaint(engine)
    first, second = sorted(outbox(engine), key=lambda r: r.id)
    with HttpReceiver([(400, {"error": "bad"}), (503, {}), (503, {})]) as rx:
        d = Dispatcher(engine, delivery(rx.url + "/hook", retry={"max_attempts": 2}))
        assert d.run_once().failed == 1 and d.run_once().claimed == 0  # 400: no retry
        engine.clock.advance(timedelta(minutes=5))
        assert d.run_once().failed == 1  # the second used its two attempts
        statuses = {r.id: (r.status, r.attempts) for r in outbox(engine)}
        assert statuses == {first.id: ("failed", 1), second.id: ("failed", 2)}
        r = runner.invoke(main, ["outbox", "retry", str(first.id)])
        assert r.exit_code == 0, r.output
        assert d.run_once().sent == 1
    assert runner.invoke(main, ["outbox", "retry", str(first.id)]).exit_code == 1  # sent: nothing to retry


class WorkerDied(BaseException):
    """The process is killed: nothing after this line of the dispatcher runs."""


class DiesAfterSending:
    name = "webhook"

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def reaches(self, recipient: Recipient) -> bool:
        return True

    def send(self, n: Notification) -> None:
        self.inner.send(n)
        raise WorkerDied()


@pytest.mark.parametrize("after_crash", ["resend", "hold"])
def test_a_worker_that_dies_mid_delivery_does_not_send_twice(engine: Any, after_crash: str) -> None:
    repeat_complaint(engine)
    [row] = outbox(engine)
    with HttpReceiver() as rx:
        settings = delivery(rx.url + "/hook", after_crash=after_crash, lease_seconds=60)
        dying = config.Delivery(settings.spec, {"webhook": DiesAfterSending(settings.adapters["webhook"])})
        with pytest.raises(WorkerDied):
            Dispatcher(engine, dying).run_once()
        assert outbox(engine)[0].status == "sending" and attempts(engine, row.id) == [(1, "started")]

        restarted = Dispatcher(engine, settings)
        assert restarted.run_once().claimed == 0  # the dead worker's lease still holds
        engine.clock.advance(timedelta(seconds=61))
        result = restarted.run_once()
    assert len(rx.delivered) == 1  # the receiver got the notification exactly once
    if after_crash == "resend":
        assert result.sent == 1 and len(rx.requests) == 2  # resent under the same key, dropped as a repeat
        assert {r.headers["idempotency-key"] for r in rx.requests} == {row.idempotency_key}
        assert attempts(engine, row.id) == [(1, "started"), (2, "sent")]
    else:
        assert result.held == 1 and len(rx.requests) == 1
        assert outbox(engine)[0].status == "held"


def test_channel_choice_falls_back_and_unknown_people_fail(engine: Any, tmp_path: Any) -> None:
    iid = repeat_complaint(engine)
    with engine.transaction() as conn:  # as the engine would: one named channel, one unknown person
        engine.store.enqueue(conn, iid, 99, ["chen_jing"], "请回电业主", "email", engine.clock.now())
        engine.store.enqueue(conn, iid, 100, ["someone_gone"], "请回电业主", None, engine.clock.now())
    out = tmp_path / "sent.jsonl"
    with HttpReceiver() as rx:
        data = {"channels": {"email": {"adapter": "smtp", "host": "127.0.0.1", "sender": "a@example.com"},
                             "sms": {"adapter": "sms", "url": rx.url + "/sms"},
                             "file": {"adapter": "file", "path": str(out)}},
                "default": ["sms", "file"]}
        d = Dispatcher(engine, config.from_data(data, Positions("<test>"), {}))
        result = d.run_once()
    assert (result.sent, result.failed) == (2, 1)
    by_recipient = {r.recipient: r for r in outbox(engine)}
    assert by_recipient["someone_gone"].status == "failed"
    # chen_jing has no e-mail address: "email" falls back to the first default that reaches her
    assert [r.body["phone"] for r in rx.requests] == ["13800000021", "13800000012"]
    assert not out.exists()


def test_secrets_never_reach_the_log_or_the_table(engine: Any, caplog: pytest.LogCaptureFixture) -> None:
    repeat_complaint(engine)
    secret = "k-7f3a9e1c55d2"
    with HttpReceiver([(200, {"errcode": 93000, "errmsg": f"invalid webhook url, key={secret}"})]) as rx:
        settings = delivery("${SOP_TEST_WEBHOOK}", env={"SOP_TEST_WEBHOOK": f"{rx.url}/send?key={secret}"})
        with caplog.at_level(logging.DEBUG):
            assert Dispatcher(engine, settings).run_once().failed == 1
    error = outbox(engine)[0].last_error or ""
    assert "93000" in error and "***" in error and secret not in error
    assert secret not in caplog.text


def test_the_background_worker_delivers_without_being_asked(engine: Any) -> None:
    with HttpReceiver() as rx:
        worker = OutboxWorker(Dispatcher(engine, delivery(rx.url + "/hook", poll_seconds=0.05))).start()
        try:
            repeat_complaint(engine)
            assert rx.arrived.wait(timeout=15)
        finally:
            worker.stop()
    assert len(rx.delivered) == 1
