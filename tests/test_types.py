"""The type hints are true: mypy, with the settings of pyproject.toml's ``[tool.mypy]``, finds
nothing in the code it names (``files``: engine/, cli.py, adapters/, tools/).

mypy runs in this process (``mypy.api.run``), as ``mypy`` run from the checkout would. Its
cache is kept outside the tree, under pytest's temporary root (which outlives each run's
own directory), one per checkout: a cold run takes ~9 s, a warm one under a second.
"""
from __future__ import annotations

import hashlib
import re
import tomllib
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


IGNORE = re.compile(r"#\s*type:\s*ignore\b(?P<codes>\[[^\]]*\])?(?P<rest>.*)$")


def test_every_type_ignore_in_the_checked_code_names_its_codes_and_says_why() -> None:
    """``# type: ignore[code]  # why it holds``: mypy checks the code (ignore-without-code),
    this the reason, so that an ignore can be judged (and dropped) when the code changes."""
    files = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]["files"]
    paths = [p for f in files for p in ([ROOT / f] if f.endswith(".py") else sorted((ROOT / f).rglob("*.py")))]
    bare = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
            for p in paths for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
            if (m := IGNORE.search(line)) and not (m["codes"] and re.match(r"\s+#\s*\S", m["rest"]))]
    assert bare == [], "give each ignore its codes and a reason:\n" + "\n".join(bare)
