"""Goals b and c: the engine against other workflow libraries on the same 5-step procedure,
persisted (SpiffWorkflow) and in memory (``transitions``)."""
from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import ROOT, T0
from bench.suite_common import BPMN, FIXTURES, FRONT_DESK, Sizes, five_steps_engine, floor_seconds, med, raw_sqlite
from engine.clock import FakeClock
from engine.runtime.config import Settings


def _spiff_run(db: Path, n: int) -> float:
    from SpiffWorkflow.bpmn import BpmnWorkflow
    from SpiffWorkflow.bpmn.parser import BpmnParser
    from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
    from SpiffWorkflow.util.task import TaskState

    parser = BpmnParser()
    parser.add_bpmn_file(str(BPMN))
    spec = parser.get_spec("five_steps")
    ser = BpmnWorkflowSerializer()
    conn = raw_sqlite(db)
    conn.execute("CREATE TABLE IF NOT EXISTS workflows (id INTEGER PRIMARY KEY, state TEXT NOT NULL)")
    begin = time.perf_counter()
    for _ in range(n):
        wf = BpmnWorkflow(spec)
        wf.do_engine_steps()
        conn.execute("BEGIN IMMEDIATE")
        wid = conn.execute("INSERT INTO workflows (state) VALUES (?)", (ser.serialize_json(wf),)).lastrowid
        conn.execute("COMMIT")
        for _step in range(5):
            # One request per step, as the engine's: load, run the ready user task, save.
            conn.execute("BEGIN IMMEDIATE")
            wf = ser.deserialize_json(conn.execute("SELECT state FROM workflows WHERE id = ?", (wid,)).fetchone()[0])
            task = wf.get_tasks(state=TaskState.READY, manual=True)[0]
            task.run()
            wf.do_engine_steps()
            conn.execute("UPDATE workflows SET state = ? WHERE id = ?", (ser.serialize_json(wf), wid))
            conn.execute("COMMIT")
        assert wf.is_completed()
    elapsed = time.perf_counter() - begin
    conn.close()
    return n / elapsed


def _engine_five(db: Path, n: int) -> float:
    clock = FakeClock(T0)
    engine = five_steps_engine(db, clock)
    begin = time.perf_counter()
    for _ in range(n):
        inst = engine.start("five_steps", FRONT_DESK)
        for k in range(1, 6):
            clock.advance(timedelta(milliseconds=1))
            inst = engine.advance(inst.id, f"do_{k}", FRONT_DESK)
        assert inst.status == "completed"
    elapsed = time.perf_counter() - begin
    engine.close()
    return n / elapsed


def goal_b(tmp: Path, sz: Sizes) -> dict[str, Any]:
    eng, spiff = [], []
    for rep in range(sz.reps):
        for which in (("engine", "spiff") if rep % 2 == 0 else ("spiff", "engine")):
            db = tmp / f"b-{which}-{rep}.db"
            (eng if which == "engine" else spiff).append(
                _engine_five(db, sz.b_instances) if which == "engine" else _spiff_run(db, sz.b_instances))
    e, s = med(eng), med(spiff)
    floor = med([_engine_floor(tmp / f"b-floor-{rep}", sz.b_instances) for rep in range(sz.reps)])
    return {"engine": e, "spiff": s, "ratio": e / s, "met": e / s >= 5, "floor": floor, "bound": floor / s}


def _engine_floor(work: Path, n: int) -> float:
    """Runs/s of the engine's own SQLite statements for ``n`` runs replayed on bare sqlite3
    (``floor_seconds``): the rate of an engine that spent no time of its own writing the
    same rows, six durable commits per run. Over SpiffWorkflow's rate, the most goal b
    could show."""
    clock = FakeClock(T0)

    def runs(engine: Any) -> None:
        for _ in range(n):
            inst = engine.start("five_steps", FRONT_DESK)
            for k in range(1, 6):
                clock.advance(timedelta(milliseconds=1))
                engine.advance(inst.id, f"do_{k}", FRONT_DESK)
    return n / floor_seconds(work, None, lambda db: five_steps_engine(db, clock), runs)


def goal_c(tmp: Path, sz: Sizes) -> dict[str, Any]:
    from transitions import Machine

    from engine.core import decide as dc
    from engine.core import evolve as ev
    from engine.core.model import Actor

    settings = Settings("sqlite://", FIXTURES, ROOT / "org" / "demo.yaml")
    library, org = settings.load()
    proc = library.get("five_steps")
    actor = Actor(FRONT_DESK, frozenset(org.person(FRONT_DESK).roles))
    decision = dc.decide_start(proc, org, actor, {}, T0, None, 1)
    inst0 = ev.start(1, proc, decision.events[0])
    for e in decision.events[1:]:
        inst0 = ev.evolve(proc, inst0, e)
    names = [f"do_{k}" for k in range(1, 6)]

    def engine_loop(n: int) -> float:
        begin = time.perf_counter()
        for _ in range(n):
            inst = inst0
            for name in names:  # what Engine.advance does between load and append
                inst = dc.decide_action(proc, org, inst, actor, name, {}, T0).result(proc, inst, ev.evolve)
        assert inst.state == "done"
        return 5 * n / (time.perf_counter() - begin)

    class Case:
        pass

    states = [f"step_{k}" for k in range(1, 6)] + ["done"]
    model = Case()
    machine = Machine(model=model, states=states, initial="step_1", auto_transitions=False,
                      transitions=[{"trigger": f"do_{k}", "source": f"step_{k}", "dest": states[k]}
                                   for k in range(1, 6)])

    def transitions_loop(n: int) -> float:
        begin = time.perf_counter()
        for _ in range(n):
            machine.set_state("step_1", model)
            for name in names:
                getattr(model, name)()
        assert model.state == "done"
        return 5 * n / (time.perf_counter() - begin)

    eng, tr = [], []
    engine_loop(200)
    transitions_loop(200)
    for rep in range(max(3, sz.reps)):
        for f in ((engine_loop, transitions_loop) if rep % 2 == 0 else (transitions_loop, engine_loop)):
            (eng if f is engine_loop else tr).append(f(sz.c_loops))
    e, t = med(eng), med(tr)
    return {"engine": e, "transitions": t, "ratio": e / t, "met": e / t >= 1}
