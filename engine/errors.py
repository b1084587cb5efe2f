"""The one exception tree of the engine.

    EngineError                      anything the engine refuses, with a message for a person
    ├── ProcedureError               a definition (procedure, form, org, calendar) is wrong;
    │                                carries every Issue found (file:line:col: path: message)
    ├── ProcedureDisabled            a command needs a procedure that problems in its files
    │                                (or its forms) disable; one line, every problem located;
    │                                the other procedures keep working
    ├── InputError                   a command argument is malformed (bad JSON, bad time, …)
    ├── InstanceNotFound
    ├── StaffNotFound
    ├── ActionNotAllowed             the action does not exist here, or its guard is false
    ├── NotAuthorized                the staff member's roles do not allow it
    │   └── OutOfScope               their roles do, but not on this instance: another
    │                                building's, or assigned to someone else
    ├── FormInvalid                  submitted data fails the form; carries field errors
    │   └── RowsInvalid              rows of a bulk start refused, each by its row number
    ├── ConcurrencyConflict          someone else changed the instance first
    ├── StoreBusy                    the database could not take the command now (a lock
    │                                held too long, a deadlock broken); safe to retry
    ├── TimeOrderError               ``--at`` earlier than the instance's last event
    ├── CalendarError                a date outside the years the working calendar knows
    ├── ReplayMismatch               replay disagrees with the stored state
    ├── StoredDataCorrupt            a stored value no longer parses (tampering or damage)
    └── AdapterError                 the outside world failed; ``retryable`` says what to do

Messages are built in ``__init__`` from fields kept as attributes, so the CLI and the API
can print them and still inspect the parts. Presentation layers map this tree once.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class EngineError(Exception):
    """Root of everything the engine refuses on purpose (never a bug)."""

    code = "engine_error"


@dataclass(frozen=True)
class Issue:
    """One problem in a definition file, located for an editor jump."""

    file: str
    line: int
    col: int
    message: str
    path: str = ""
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}: "
        path = f"{self.path}: " if self.path else ""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}{path}{self.message}{hint}"


class ProcedureError(EngineError):
    code = "procedure_invalid"

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


class ProcedureDisabled(EngineError):
    """A command needs ``procedure``, which is disabled by problems in its files (or in a
    form it uses). One line: every issue, located, separated by "; "."""

    code = "procedure_disabled"

    def __init__(self, procedure: str, issues: list[Issue], needed_by: str = "") -> None:
        self.procedure = procedure
        self.issues = list(issues)
        self.needed_by = needed_by
        why = "; ".join(str(i) for i in self.issues) or "its files have problems"
        by = f" ({needed_by})" if needed_by else ""
        super().__init__(f"procedure {procedure} is disabled{by}: {why}")


class InputError(EngineError):
    code = "bad_input"

    def __init__(self, argument: str, reason: str) -> None:
        self.argument = argument
        self.reason = reason
        super().__init__(f"{argument}: {reason}")


class InstanceNotFound(EngineError):
    code = "not_found"

    def __init__(self, instance_id: object) -> None:
        self.instance_id = instance_id
        super().__init__(f"instance {instance_id} not found")


class StaffNotFound(EngineError):
    code = "unknown_staff"

    def __init__(self, staff_id: str) -> None:
        self.staff_id = staff_id
        super().__init__(f"staff {staff_id!r} is not in the organisation file")


class ActionNotAllowed(EngineError):
    code = "action_not_allowed"

    def __init__(self, action: str, reason: str) -> None:
        self.action = action
        self.reason = reason
        super().__init__(f"action {action!r} not allowed: {reason}")


class NotAuthorized(EngineError):
    code = "forbidden"

    def __init__(self, staff_id: str, what: str, allowed_roles: list[str]) -> None:
        self.staff_id = staff_id
        self.what = what
        self.allowed_roles = list(allowed_roles)
        super().__init__(
            f"{staff_id} may not {what}: needs one of the roles {', '.join(allowed_roles) or '(none)'}"
        )


class OutOfScope(NotAuthorized):
    """A building-scoped person (a steward) and an instance outside their scope.

    ``allowed_roles`` are the supervising roles (who could do it); ``building`` is the
    instance's (None: it has none), ``buildings`` the person's, ``assignee`` whoever holds
    the instance when that is someone else.
    """

    def __init__(self, staff_id: str, what: str, instance_id: int, building: str | None,
                 buildings: tuple[str, ...], assignee: str | None, supervising_roles: list[str]) -> None:
        NotAuthorized.__init__(self, staff_id, what, supervising_roles)
        self.instance_id, self.building, self.buildings, self.assignee = instance_id, building, buildings, assignee
        reasons = []
        if building is not None and building not in buildings:
            reasons.append(f"instance {instance_id} is in building {building}, not one of yours ({', '.join(buildings)})")
        if assignee is not None:
            reasons.append(f"instance {instance_id} is assigned to {assignee}")
        roles = ", ".join(supervising_roles) or "(none)"
        Exception.__init__(self, f"{staff_id} may not {what}: {'; '.join(reasons)} (a supervisor may: {roles})")


@dataclass(frozen=True)
class FieldError:
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class FormInvalid(EngineError):
    code = "form_invalid"

    def __init__(self, form: str, errors: list[FieldError]) -> None:
        self.form = form
        self.errors = list(errors)
        super().__init__(f"form {form}: " + "; ".join(str(e) for e in self.errors))


class RowsInvalid(FormInvalid):
    """Rows of a bulk command that were refused; the command wrote nothing.

    ``rows`` holds (row number, counting from 1, the row's own refusal); ``errors`` is
    every field error named ``row N: field``, so whatever shows a FormInvalid shows these.
    The message lists the first few rows; the attributes keep them all.
    """

    SHOWN = 5

    def __init__(self, form: str, rows: Sequence[tuple[int, EngineError]], total: int) -> None:
        self.rows = list(rows)
        self.total = total
        errors = []
        for n, err in self.rows:
            if isinstance(err, FormInvalid):
                errors += [FieldError(f"row {n}: {fe.field}", fe.reason) for fe in err.errors]
            else:
                errors.append(FieldError(f"row {n}", str(err)))
        super().__init__(form, errors)
        shown = "; ".join(f"row {n}: {reason}" for n, reason in self.reasons()[:self.SHOWN])
        more = len(self.rows) - self.SHOWN
        self.args = (f"{len(self.rows)} of {total} rows refused, nothing started: {shown}"
                     + (f"; and {more} more rows" if more > 0 else ""),)

    def reasons(self) -> list[tuple[int, str]]:
        """(row number, why) per refused row: its field errors, or its refusal's message."""
        return [(n, "; ".join(str(fe) for fe in err.errors) if isinstance(err, FormInvalid) else str(err))
                for n, err in self.rows]


class ItemsInvalid(RowsInvalid):
    """Items of a batch of actions (``Engine.act_many``, ``sop act --batch``) that were
    refused; the batch wrote nothing. Like RowsInvalid, with items for rows."""

    def __init__(self, items: list[tuple[int, EngineError]], total: int) -> None:
        super().__init__("actions", items, total)
        self.errors = [FieldError("item" + fe.field[3:], fe.reason) if fe.field.startswith("row") else fe
                       for fe in self.errors]
        shown = "; ".join(f"item {n}: {reason}" for n, reason in self.reasons()[:self.SHOWN])
        more = len(self.rows) - self.SHOWN
        self.args = (f"{len(self.rows)} of {total} items refused, nothing written: {shown}"
                     + (f"; and {more} more items" if more > 0 else ""),)


class ConcurrencyConflict(EngineError):
    code = "conflict"

    def __init__(self, instance_id: object, expected: int, actual: int | None = None) -> None:
        self.instance_id = instance_id
        self.expected = expected
        self.actual = actual
        now = f" (now at revision {actual})" if actual is not None else ""
        super().__init__(
            f"instance {instance_id} was changed by someone else since revision {expected}{now}; "
            "reload it and try again"
        )


class KeysTaken(EngineError):
    """A bulk start lost a race: another process started some of the same records (external
    keys) after the batch checked them. Nothing of the batch was written."""

    code = "conflict"

    def __init__(self, what: str) -> None:
        super().__init__(f"{what}: another process started some of the same records at the same moment; "
                         "nothing was written. Run it again: records already started are skipped")


class StoreBusy(EngineError):
    """The database could not take the command now: another process held the lock it needed
    for longer than the engine waits (SQLite's busy timeout, 30 s), or PostgreSQL chose this
    transaction to break a deadlock. The transaction was rolled back; trying again is safe."""

    code = "busy"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"the database is busy ({reason}); nothing was changed, try again")


class TimeOrderError(EngineError):
    code = "time_order"

    def __init__(self, instance_id: object, at: str, last: str) -> None:
        self.instance_id = instance_id
        self.at = at
        self.last = last
        super().__init__(
            f"--at {at} is earlier than the last event of instance {instance_id} ({last})"
        )


class CalendarError(EngineError):
    code = "calendar"


class ReplayMismatch(EngineError):
    code = "replay_mismatch"

    def __init__(self, instance_id: object, seq: int | None, difference: str) -> None:
        self.instance_id = instance_id
        self.seq = seq
        self.difference = difference
        at = f" at seq {seq}" if seq is not None else ""
        super().__init__(f"instance {instance_id}{at}: {difference}")


class StoredDataCorrupt(EngineError):
    code = "corrupt"

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: stored value is unreadable ({reason}); run `sop audit verify`")


class AdapterError(EngineError):
    code = "adapter"

    def __init__(self, adapter: str, reason: str, retryable: bool) -> None:
        self.adapter = adapter
        self.reason = reason
        self.retryable = retryable
        super().__init__(f"{adapter}: {reason}")
