"""`sop serve` on PostgreSQL: the same end-to-end run as tests/test_api_serve.py (API, timer
sweep and outbox in one process), against a fresh database of the test server."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from test_api_serve import test_serve_answers_sweeps_timers_and_delivers_notifications as serve_end_to_end


@pytest.fixture
def db_url(pg_url: str) -> str:  # overrides conftest's SQLite file
    return pg_url


def test_serve_answers_sweeps_timers_and_delivers_notifications_on_postgresql(runner: Any, db_url: str,
                                                                              tmp_path: Path) -> None:
    serve_end_to_end(runner, db_url, tmp_path)
