"""The running case (Instance), its events, and the commands that change it."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, Optional

from engine.codec import Clock

GENESIS_HASH = "0" * 64

class EventKind(StrEnum):
    """Every kind of event the engine writes, past tense: the ``type`` of an event.

    A member *is* its text (``EventKind.ACTION_TAKEN == "ActionTaken"``), and the codec
    writes that plain text into the hash body and the ``type`` column, so no stored byte or
    hash changes (tests/test_codec.py). Events read back from the store keep the stored
    text as is: an old or foreign kind still loads (and compares, prints, exports) as its
    text; only folding it raises ReplayMismatch, as it always did. :meth:`of` gives the
    member for a text when one exists.
    """

    INSTANCE_STARTED = "InstanceStarted"
    ACTION_TAKEN = "ActionTaken"
    DATA_RECORDED = "DataRecorded"
    ASSIGNED = "Assigned"
    NOTIFICATION_QUEUED = "NotificationQueued"
    CHILD_SPAWNED = "ChildSpawned"
    INSTANCE_COMPLETED = "InstanceCompleted"
    # An instance moved onto another version of its procedure (``sop migrate``): from, to,
    # state_from, state_to, mapped. Events after it fold under version ``to``.
    VERSION_MIGRATED = "VersionMigrated"
    # Watchers (engine.core.watchers).
    WATCHER_ADDED = "WatcherAdded"
    WATCHER_REMOVED = "WatcherRemoved"
    # A firing whose automatic action was refused (engine.core.fire).
    AUTOMATIC_ACTION_REFUSED = "AutomaticActionRefused"
    # Parallel states (engine.core.parallel).
    BRANCHES_FORKED = "BranchesForked"
    BRANCH_ASSIGNED = "BranchAssigned"
    BRANCH_ACTION_TAKEN = "BranchActionTaken"
    BRANCH_FINISHED = "BranchFinished"
    BRANCHES_JOINED = "BranchesJoined"
    # Clocks (engine.core.clocks): each carries the clock's whole new state.
    SLA_STARTED = "SlaStarted"
    SLA_WARNED = "SlaWarned"
    SLA_BREACHED = "SlaBreached"
    SLA_STOPPED = "SlaStopped"
    SLA_PAUSED = "SlaPaused"
    SLA_RESUMED = "SlaResumed"
    SLA_RESET = "SlaReset"
    SLA_CANCELLED = "SlaCancelled"
    SLA_ESCALATED = "SlaEscalated"
    SLA_ACKNOWLEDGED = "SlaAcknowledged"
    TIMER_ARMED = "TimerArmed"
    TIMER_FIRED = "TimerFired"
    TIMER_CANCELLED = "TimerCancelled"
    CLOCK_REPAIRED = "ClockRepaired"
    QUOTA_STARTED = "QuotaStarted"
    QUOTA_COUNTED = "QuotaCounted"
    QUOTA_JUDGED = "QuotaJudged"
    QUOTA_ENDED = "QuotaEnded"

    @classmethod
    def of(cls, text: str) -> "EventKind | str":
        """The member named by a stored ``type``, or the text itself for a kind this
        engine does not know (an old log's, replayed): loading never fails on a kind."""
        return cls._value2member_map_.get(text, text)  # type: ignore[return-value]  # the map's values are EventKind members


# The old names, kept so call sites keep working.
INSTANCE_STARTED = EventKind.INSTANCE_STARTED
ACTION_TAKEN = EventKind.ACTION_TAKEN
DATA_RECORDED = EventKind.DATA_RECORDED
ASSIGNED = EventKind.ASSIGNED
NOTIFICATION_QUEUED = EventKind.NOTIFICATION_QUEUED
CHILD_SPAWNED = EventKind.CHILD_SPAWNED
INSTANCE_COMPLETED = EventKind.INSTANCE_COMPLETED
VERSION_MIGRATED = EventKind.VERSION_MIGRATED


@dataclass(frozen=True)
class Instance:
    """The projection of one instance's log; what ``sop show`` prints."""

    id: int
    procedure: str
    version: str
    state: str
    status: str = "active"
    assignee: Optional[str] = None
    assignee_role: Optional[str] = None
    data: dict[str, Any] = field(default_factory=dict)
    parent_id: Optional[int] = None
    children: tuple[int, ...] = ()
    # Typed clocks (engine.codec.Clock), decoded once where a row is loaded or an event folded.
    clocks: dict[str, Clock] = field(default_factory=dict)
    watchers: tuple[str, ...] = ()
    # The branches of the parallel state the instance is in (empty outside one): branch ->
    # {state, status (open | done), assignee, role}.
    branches: dict[str, dict[str, Any]] = field(default_factory=dict)
    revision: int = 0
    started_at: Optional[datetime] = None
    last_occurred_at: Optional[datetime] = None
    last_hash: str = GENESIS_HASH

    def with_(self, **changes: Any) -> "Instance":
        """A copy with some fields changed. Every event folds through here several times per
        command, and ``dataclasses.replace`` (a full ``__init__``) was a tenth of an action's
        CPU; copying the attribute dict is the same result for this plain frozen record."""
        unknown = changes.keys() - _INSTANCE_FIELDS
        if unknown:
            raise TypeError(f"Instance has no field(s) {', '.join(sorted(unknown))}")
        new = object.__new__(Instance)
        object.__setattr__(new, "__dict__", {**self.__dict__, **changes})
        return new

    @property
    def active(self) -> bool:
        return self.status == "active"


_INSTANCE_FIELDS = frozenset(f.name for f in fields(Instance))


@dataclass(frozen=True)
class Event:
    """One fact in an instance's log, before (``seq`` 0) or after it is stored.

    ``type`` is an :class:`EventKind` when the engine made the event, the stored text when
    it was read back (equal to the member; see :class:`EventKind` for unknown kinds)."""

    type: str
    actor: str
    role: Optional[str]
    occurred_at: datetime
    data: dict[str, Any]
    seq: int = 0
    recorded_at: Optional[datetime] = None
    prev_hash: str = ""
    hash: str = ""


@dataclass(frozen=True)
class Actor:
    """Who issues a command: a staff id with their roles, or the engine itself."""

    id: str
    roles: frozenset[str]

    @classmethod
    def system(cls) -> "Actor":
        return cls("system", frozenset({"system"}))


@dataclass(frozen=True)
class SpawnRequest:
    """A linked instance to start in the same transaction (its id is not known yet)."""

    procedure: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Notification:
    recipients: tuple[str, ...]
    message: str
    channel: Optional[str] = None


@dataclass
class Decision:
    """What a command decided: the events to append, and the work they ask of the shell."""

    events: list[Event] = field(default_factory=list)
    spawns: list[SpawnRequest] = field(default_factory=list)
    # The instance after the first ``folded[0]`` events, as the decision itself folded
    # them (decide folds as it goes, so later effects see earlier ones): the shell reuses
    # it instead of folding the same events a second time, when it covers all of them.
    folded: Optional[tuple[int, "Instance"]] = None

    def result(self, proc: Any, before: "Instance", evolve: Any) -> "Instance":
        """The instance after all events: the decision's own fold when complete, else a fold."""
        if self.folded is not None and self.folded[0] == len(self.events):
            return self.folded[1]
        after = before
        for e in self.events:
            after = evolve(proc, after, e)
        return after
