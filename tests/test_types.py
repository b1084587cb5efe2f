"""The type hints are true: mypy, with the settings of pyproject.toml's ``[tool.mypy]``, finds
nothing in the code it names (``files``: engine/, cli.py, adapters/, tools/).

mypy runs in this process (``mypy.api.run``), as ``mypy`` run from the checkout would. Its
cache is kept outside the tree, under pytest's temporary root (which outlives each run's
own directory), one per checkout: a cold run takes ~9 s, a warm one under a second.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parents[1]


def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Beside pytest's numbered temporary directories, named after this checkout (two
    checkouts never share one: mypy's cache keys on module names, not paths)."""
    checkout = hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]
    return tmp_path_factory.getbasetemp().parent / f"mypy-cache-{checkout}"


def test_mypy_finds_no_type_errors(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the config's files are relative to the checkout
    report, errors, status = api.run(["--config-file", str(ROOT / "pyproject.toml"),
                                      "--cache-dir", str(_cache_dir(tmp_path_factory)), "--no-color-output"])
    assert status == 0, f"mypy (exit {status}):\n{report}{errors}"
    assert report.startswith("Success: no issues found"), report
