"""Where the shipped data lives: ``procedures/``, ``forms/``, ``org/``, ``config/``, ``demo/``.

In a source checkout (and an editable install of one) they are the top-level folders beside
``engine/``. A wheel carries the same folders as the data package ``sop_data`` (the
``package-dir`` mapping in ``pyproject.toml``), installed beside ``engine/``. Either way the
folders keep their names and neighbours, so ``procedures/../forms`` holds in both, and no
lookup depends on the working directory.
"""
from __future__ import annotations

from pathlib import Path

_BESIDE_ENGINE = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    """The folder holding the shipped ``procedures/``, ``forms/``, ``org/``, ``config/`` and ``demo/``."""
    installed = _BESIDE_ENGINE / "sop_data"
    return installed if (installed / "procedures").is_dir() else _BESIDE_ENGINE
