"""``sop demo``: one month at the demo site, played on a fresh database and a settable clock.

``player.py`` runs the stories in time order and sweeps the timers between their steps
(through engine/timeskip.py); ``stories/`` holds the script, one module per procedure;
``files.py`` makes and recreates only the demo's own files; ``result.py`` is what the month
leaves (figures, JSON, the closing report). The data it imports (call records, bank
statements) ship in the top-level ``demo/`` folder (``sop_data.demo`` in a wheel). The demo
talks to the engine only through the public ``Engine`` methods and the import adapters
staff use: it runs no SQL of its own.
"""
from engine.demo.files import NOTICES_MARK, fresh_db, is_demo_db, mark_demo, notices_dir_for
from engine.demo.player import run
from engine.demo.result import DemoResult, as_json, summary

__all__ = ["NOTICES_MARK", "DemoResult", "as_json", "fresh_db", "is_demo_db", "mark_demo", "notices_dir_for", "run",
           "summary"]
