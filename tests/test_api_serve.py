"""`sop serve` as a real process: the API on a free port, the timer sweep and the outbox
in the same process, on the embedded SQLite; stopped cleanly by SIGTERM."""
from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx

from cli import main
from tests.api_support import COMPLAINT
from test_notify_receivers import HttpReceiver

ROOT = Path(__file__).resolve().parents[1]


def lines_of(stream: Any) -> "queue.Queue[str]":
    q: "queue.Queue[str]" = queue.Queue()
    threading.Thread(target=lambda: [q.put(line) for line in iter(stream.readline, "")], daemon=True).start()
    return q


def test_serve_answers_sweeps_timers_and_delivers_notifications(runner: Any, db_url: str, tmp_path: Path) -> None:
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    token = runner.invoke(main, ["staff", "token", "create", "liu_fang"]).stdout.strip()
    with HttpReceiver() as rx:
        cfg = tmp_path / "notify.yaml"
        cfg.write_text(f"channels:\n  hook: {{adapter: webhook, url: '{rx.url}/hook', style: json}}\n"
                       "default: [hook]\npoll_seconds: 0.1\n", encoding="utf-8")
        proc = subprocess.Popen([sys.executable, "-m", "cli", "--db", db_url, "serve", "--port", "0",
                                 "--notify", str(cfg), "--sweep-interval", "0.2"],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            err = lines_of(proc.stderr)
            url = None
            while url is None:  # bounded: each line within 60 s, and the banner comes first
                found = re.search(r"sop serve: (http://\S+)/docs", err.get(timeout=60))
                url = found.group(1) if found else None
            client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            assert "/v1/instances" in client.get("/openapi.json").json()["paths"]
            page = httpx.get(f"{url}/", timeout=30, follow_redirects=True)  # the staff pages, same process
            assert page.status_code == 200 and 'id="login-form"' in page.text
            # received long ago: its reply deadline has passed, so the sweep breaches it at once
            r = client.post("/v1/instances", json={"procedure": "complaint", "data": COMPLAINT,
                                                   "at": "2025-09-30T10:00:00+08:00"})
            assert r.status_code == 201, r.text
            iid = r.json()["id"]

            def breach_reported(rx: HttpReceiver) -> bool:
                return any("已超过答复时限" in m.body["text"] for m in list(rx.delivered.values()))

            assert rx.wait_for(breach_reported, timeout=30), [m.body for m in rx.requests]
            shown = client.get(f"/v1/instances/{iid}").json()
            assert shown["data"]["priority"] == "high"  # the breach's own effect, by the sweep
            client.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
    assert code == 0
    assert len(rx.delivered) == len(rx.requests)  # nothing was sent twice
