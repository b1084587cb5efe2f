"""``pip install .`` gives a working ``sop`` without the checkout: code, templates, migrations and
the shipped procedures, forms, org, config and demo files, found without a working directory.

A clean copy of the checkout is installed into fresh virtual environments of their own, twice:
as a built wheel (alone, lent this environment's dependencies by a ``.pth`` line, so the new
environment sees their files but not this checkout), and with ``pip install DIR``, its
dependencies from the package index as a user gets them. ``sop lint``, ``sop demo``, a notice
and ``sop serve`` then run in an empty directory. Building needs the index (setuptools).
"""
from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA_FOLDERS = ("procedures", "forms", "org", "config", "demo")
NOT_SHIPPED = shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", "*.db",
                                     "*.db-wal", "*.db-shm", ".hypothesis", ".pytest_cache", "sop-demo-notices")


def setuptools_config() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_every_code_package_and_data_folder_is_listed_for_the_wheel() -> None:
    cfg = setuptools_config()
    listed = set(cfg["packages"])
    code = {".".join(p.relative_to(ROOT).parts) for top in ("engine", "adapters")
            for p in [ROOT / top, *(ROOT / top).rglob("*")]
            if p.is_dir() and p.name != "__pycache__" and any(f.is_file() for f in p.iterdir())}
    assert code <= listed, f"add to [tool.setuptools] packages: {sorted(code - listed)}"
    data = {str(p.relative_to(ROOT)) for top in DATA_FOLDERS for p in [ROOT / top, *(ROOT / top).rglob("*")]
            if p.is_dir()}
    mapped = cfg["package-dir"]
    assert {v for k, v in mapped.items() if k.startswith("sop_data.")} == data
    assert all(mapped[f"sop_data.{d.replace('/', '.')}"] == d for d in data)
    patterns = set(cfg["package-data"]["*"])
    suffixes = {f"*{p.suffix}" for top in DATA_FOLDERS for p in (ROOT / top).rglob("*") if p.is_file()}
    assert suffixes <= patterns, f"add to package-data: {sorted(suffixes - patterns)}"


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def fresh_venv(where: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, timeout=300)
    return where / "bin"


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith("SOP_") and k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")} | \
        {"PIP_DISABLE_PIP_VERSION_CHECK": "1"}


@pytest.fixture(scope="module")
def clean_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("checkout") / "sop"
    shutil.copytree(ROOT, src, ignore=NOT_SHIPPED)
    return src


def installed_from_wheel(clean_copy: Path, tmp: Path) -> Path:
    env = clean_env()
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), str(clean_copy)], tmp, env)
    (wheel,) = (tmp / "dist").glob("sop-*.whl")
    bin_dir = fresh_venv(tmp / "venv")
    run([str(bin_dir / "python"), "-m", "pip", "install", "--no-deps", "-q", str(wheel)], tmp, env)
    # This environment's dependencies, seen after the new environment's own site-packages.
    site = Path(run([str(bin_dir / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                    tmp, env).strip())
    lent = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "zz_lent_dependencies.pth").write_text("\n".join(sorted(lent)) + "\n", encoding="utf-8")
    return bin_dir


def installed_from_source(clean_copy: Path, tmp: Path) -> Path:
    bin_dir = fresh_venv(tmp / "venv")
    run([str(bin_dir / "python"), "-m", "pip", "install", "-q", str(clean_copy)], tmp, clean_env(), timeout=1800)
    return bin_dir


def lines_of(stream: Any) -> "queue.Queue[str]":
    q: "queue.Queue[str]" = queue.Queue()
    threading.Thread(target=lambda: [q.put(line) for line in iter(stream.readline, "")], daemon=True).start()
    return q


def check_installed_sop(bin_dir: Path, empty: Path) -> None:
    env = clean_env()
    where = run([str(bin_dir / "python"), "-c", "import cli, engine.shipped as s; print(cli.__file__); "
                 "print(s.data_root())"], empty, env).split()
    assert all(Path(p).is_relative_to(bin_dir.parent) for p in where), where  # not the checkout's files
    assert Path(where[1]).name == "sop_data"
    sop = str(bin_dir / "sop")
    run([sop, "lint"], empty, env)
    assert "complaint" in run([sop, "graph", "complaint"], empty, env)
    demo = run([sop, "demo"], empty, env)
    assert "every chain intact" in demo and (empty / "sop-demo.db").exists()
    db = f"sqlite:///{empty / 'sop-demo.db'}"
    notice = run([sop, "--db", db, "notice", "render", "15", "lawyer_letter", "--out", str(empty / "n")], empty, env)
    assert Path(notice.strip()).read_text(encoding="utf-8")
    proc = subprocess.Popen([sop, "--db", db, "serve", "--port", "0"], cwd=empty, env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        err = lines_of(proc.stderr)
        up = None
        while up is None:  # bounded: each line within 60 s, and the banner comes first
            up = re.search(r"sop serve: (http://\S+)/docs", err.get(timeout=60))
        assert httpx.get(f"{up.group(1)}/docs", timeout=30).status_code == 200
        assert "/v1/instances" in httpx.get(f"{up.group(1)}/openapi.json", timeout=30).json()["paths"]
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0
    assert "sop.db" not in os.listdir(empty)  # nothing but the demo's database was created


def test_a_built_wheel_runs_lint_demo_and_serve_without_the_checkout(clean_copy: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    check_installed_sop(installed_from_wheel(clean_copy, tmp_path), empty)


def test_pip_install_of_a_clean_checkout_runs_lint_demo_and_serve(clean_copy: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    check_installed_sop(installed_from_source(clean_copy, tmp_path), empty)


def test_no_test_can_skip_for_a_missing_declared_package() -> None:
    """Each [test] extra is importable here, and no test asks to be skipped when one is not."""
    import importlib
    import importlib.metadata
    import re as _re

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    modules = {"spiffworkflow": "SpiffWorkflow"}
    for requirement in extras["test"]:
        name = _re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()  # type: ignore[union-attr]
        if name.startswith("types-"):  # a stub package (for mypy): nothing to import, only installed
            importlib.metadata.distribution(name)
        else:
            importlib.import_module(modules.get(name, name.replace("-", "_")))
    skippers = [p.name for p in (ROOT / "tests").glob("*.py") if "importorskip(" in p.read_text(encoding="utf-8")
                and p.name != "test_packaging.py"]
    assert skippers == [], "import declared packages plainly, so that a missing one fails"
