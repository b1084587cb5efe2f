"""Hot-path statements run straight on the database driver (sqlite3 or psycopg).

SQLAlchemy compiles each statement once; ``Prepared`` then binds its parameters through the
same type processors and runs the compiled text on the driver, skipping Core's per-call
execution machinery, which cost more CPU than the database's own work for the one-row
statements an engine command is made of (BENCHMARKS.md). Times get exact, faster
equivalents of SQLAlchemy's processors here, checked against them once per dialect.
"""
from __future__ import annotations

import re
from collections import namedtuple
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.instants import per_instant
from engine.store import tables
from engine.store.db import as_sqlalchemy_error, uses_driver


class Prepared:
    """A Core statement for the hot path, run straight on the driver (sqlite3 or psycopg).

    For a one-row statement SQLAlchemy's per-call machinery (compiled-cache lookup,
    execution context, result object) costs several times what SQLite itself needs, and
    each engine command runs three of them (see BENCHMARKS.md); on PostgreSQL it made an
    action cost 2.9 ms of CPU instead of 1.25. This compiles the statement once per
    dialect and set of parameter names, exactly as ``Connection.execute`` would (on
    psycopg with SQLAlchemy's casts, its named parameters made positional), then binds
    through the same type processors (so the same values are stored and read back) and
    runs it on the driver. Driver errors are wrapped as SQLAlchemy's own
    (``IntegrityError`` …). Anything else — another driver, no transaction begun, cursor
    event listeners or echo, parameters that cannot be made positional, non-scalar
    defaults — goes through ``Connection.execute``.
    """

    def __init__(self, stmt: Any) -> None:
        self.stmt = stmt
        self._plans: dict[tuple[Any, ...], Optional[_Plan]] = {}

    def _plan(self, conn: Connection, keys: tuple[str, ...], many: bool) -> Optional["_Plan"]:
        # In a transaction on the driver: begun by Connections (which checked uses_driver as
        # it began, and names the driver), or by SQLAlchemy (which begins on the driver too,
        # see db._on_begin); outside one, Core autobegins.
        driver = getattr(conn, "sop_driver", None)
        if driver is None:
            if not uses_driver(conn) or not _began(conn):
                return None
        elif conn.dialect.name == "sqlite" and not driver.in_transaction:
            return None
        dialect = conn.dialect
        key = (type(dialect), dialect.server_version_info, keys, many)
        try:
            return self._plans[key]
        except KeyError:
            plan = self._plans[key] = _Plan.build(self.stmt, dialect, keys, many)
            return plan

    def execute(self, conn: Connection, params: dict[str, Any], sent: Optional[dict[str, Any]] = None) -> int:
        """Run once; the number of rows matched (for UPDATE/DELETE). On the fast path,
        ``sent`` receives each parameter's value as the driver got it, by name (defaults
        included): what SQLite stores for a column set from it."""
        plan = self._plan(conn, tuple(params), False)
        if plan is None:
            return conn.execute(self.stmt, params).rowcount
        return plan.run(conn, params, sent).rowcount

    def execute_after_insert(self, conn: Connection, insert: "Prepared", rows: list[dict[str, Any]],
                             params: dict[str, Any], sent: Optional[dict[str, Any]] = None) -> int:
        """Insert ``rows`` with ``insert``, then run this statement once; the rows it matched
        (``sent`` as for ``execute``). On psycopg's fast path the two are one statement
        (``WITH … AS (INSERT …) UPDATE …``) and so one round trip: an action's events and its
        projection update, ~10% of its time on PostgreSQL (BENCHMARKS.md)."""
        if rows and conn.dialect.driver == "psycopg" and len(rows) <= _PG_ROWS_PER_INSERT:
            first = insert._plan(conn, tuple(rows[0]), True)
            then = self._plan(conn, tuple(params), False)
            if first is not None and then is not None:
                return then.run_after_insert(conn, first, rows, params, sent)
        if rows:
            insert.executemany(conn, rows)
        return self.execute(conn, params, sent)

    def executemany(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        plan = self._plan(conn, tuple(rows[0]), True) if rows else None
        if plan is None:
            conn.execute(self.stmt, rows)
        else:
            plan.run_many(conn, rows)

    def update_many(self, conn: Connection, rows: list[dict[str, Any]],
                    sents: Optional[list[dict[str, Any]]] = None) -> int:
        """Run this UPDATE once per parameter dict of ``rows``; the rows matched in all.

        Rows with the same parameter names share one compiled plan and one driver
        ``executemany``: sqlite3's loops in C, psycopg's pipelines the statements in one
        round trip; either's rowcount is the sum. ``sents``, when given, receives one dict per row as ``execute``'s ``sent``
        (in the order of ``rows``): what each row's columns were set to.
        """
        groups: dict[tuple[str, ...], list[int]] = {}
        for i, r in enumerate(rows):
            groups.setdefault(tuple(r), []).append(i)
        out: list[dict[str, Any]] = [{} for _ in rows] if sents is not None else []
        matched = 0
        for keys, which in groups.items():
            plan = self._plan(conn, keys, False)
            if plan is None or (plan.kept_cursor and len(which) == 1):
                for i in which:
                    matched += self.execute(conn, rows[i], out[i] if sents is not None else None)
                continue
            args = [plan._args(rows[i]) for i in which]
            if sents is not None:
                for i, a in zip(which, args):
                    out[i].update(zip(plan.order, a))
            try:
                # psycopg pipelines the statements (one round trip) and sums their rowcounts
                cur = _kept_cursor(conn) if plan.kept_cursor else conn.connection.driver_connection
                done = cur.executemany(plan.sql, args)
                matched += (cur if plan.kept_cursor else done).rowcount
            except plan.dialect.loaded_dbapi.Error as err:
                raise as_sqlalchemy_error(plan.dialect, plan.sql, args, err, many=True) from err
        if sents is not None:
            sents.extend(out)
        return matched

    def first(self, conn: Connection, params: dict[str, Any],
              sent: Optional[dict[str, Any]] = None) -> Optional[tuple[Any, ...]]:
        """The first result row (processed like a Core ``Row``, read by position), or None;
        ``sent`` as for ``execute``."""
        row, process = self.first_unprocessed(conn, params, sent)
        return row if row is None or process is None else process(row)

    def first_unprocessed(self, conn: Connection, params: dict[str, Any], sent: Optional[dict[str, Any]] = None
                          ) -> tuple[Optional[Any], Optional[Callable[[Any], Any]]]:
        """The first result row as the driver gives it, and what makes it the row ``first``
        would give (None: it is that row already, off the fast path). For callers that
        often need only to compare a row with one they read before (the instance cache)."""
        plan = self._plan(conn, tuple(params), False)
        if plan is None:
            return conn.execute(self.stmt, params).first(), None
        cur = plan.run(conn, params, sent)
        try:
            return cur.fetchone(), plan.process
        finally:
            plan.done(cur)

    def all(self, conn: Connection, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        plan = self._plan(conn, tuple(params), False)
        if plan is None:
            return list(conn.execute(self.stmt, params))
        cur = plan.run(conn, params)
        try:
            return [plan.process(r) for r in cur.fetchall()]
        finally:
            plan.done(cur)

    def all_unprocessed(self, conn: Connection, params: dict[str, Any]
                        ) -> tuple[list[Any], Optional[list[Optional[Callable[[Any], Any]]]]]:
        """All result rows as the driver gives them, with each column's result processor
        (None: the value as it is); off the fast path Core's rows, already processed, and
        None for the processors.

        For readers of many rows (replay, verification): they convert each driver tuple
        straight into their own record, instead of a processed row first and the record
        from that.
        """
        plan = self._plan(conn, tuple(params), False)
        if plan is None:
            return list(conn.execute(self.stmt, params)), None
        cur = plan.run(conn, params)
        try:
            return cur.fetchall(), plan.results
        finally:
            plan.done(cur)


def _began(conn: Connection) -> bool:
    """Whether a transaction is open that a statement on the driver joins: on SQLite the
    driver's (Connections and db._on_begin begin there); psycopg would begin one of its own on
    the first statement, so there only SQLAlchemy's own transaction counts."""
    if conn.dialect.name == "sqlite":
        return bool(conn.connection.driver_connection.in_transaction)
    return conn.in_transaction()


_PYFORMAT = re.compile(r"%\((\w+)\)s")


def _numbered(pyformat: str) -> str:
    """A pyformat statement with its placeholders numbered $1, $2 … in order of appearance,
    and its escaped percent signs as they are meant."""
    numbers = iter(range(1, 1 + pyformat.count("%(")))
    return _PYFORMAT.sub(lambda _m: f"${next(numbers)}", pyformat).replace("%%", "%")


_NUMBERED = re.compile(r"\$(\d+)")


def _shifted(sql: str, by: int) -> str:
    """A ``$n`` statement with every parameter number raised by ``by``."""
    return _NUMBERED.sub(lambda m: f"${by + int(m.group(1))}", sql)


class _Plan:
    """SQL text, positional parameter order, defaults and processors of one compilation."""

    def __init__(self, sql: str, order: list[str], defaults: dict[str, Any],
                 binds: list[Optional[Callable[[Any], Any]]], columns: list[str],
                 results: list[Optional[Callable[[Any], Any]]], dialect: Any) -> None:
        self.sql, self.order, self.defaults, self.results = sql, order, defaults, results
        self.binds = [(i, p) for i, p in enumerate(binds) if p is not None]
        self.dialect = dialect
        self.kept_cursor = dialect.driver == "psycopg"
        self._multi: dict[int, str] = {}
        self._after: dict[tuple[int, int], str] = {}
        # Rows read by position or by column name, like SQLAlchemy's Row.
        self.row = namedtuple("PreparedRow", columns, rename=True)  # type: ignore[misc]
        self._processed = [(i, p) for i, p in enumerate(results) if p is not None]

    @classmethod
    def build(cls, stmt: Any, dialect: Any, keys: tuple[str, ...], many: bool) -> Optional["_Plan"]:
        compiled = stmt.compile(dialect=dialect, column_keys=sorted(keys), for_executemany=many)
        if compiled.escaped_bind_names or compiled.literal_execute_params or compiled.post_compile_params:
            return None
        sql = compiled.string
        if dialect.paramstyle == "qmark" and compiled.positiontup is not None:
            order = list(compiled.positiontup)
        elif dialect.paramstyle == "pyformat" and dialect.driver == "psycopg":
            # Run by a psycopg RawCursor in PostgreSQL's own $1 … $n: psycopg then need not
            # parse the statement for Python placeholders on every call (for the many-row
            # INSERT of a bulk start that parse took longer than PostgreSQL's own work).
            order = _PYFORMAT.findall(sql)
            if set(order) != set(compiled.binds):
                return None
            sql = _numbered(sql)
            if "%(" in sql:
                return None
        else:
            return None
        defaults: dict[str, Any] = {}
        for col in list(compiled.insert_prefetch) + list(compiled.update_prefetch):
            default = col.default if col in compiled.insert_prefetch else col.onupdate
            if default is None or not default.is_scalar:
                return None
            defaults[col.key] = default.arg
        if any(name not in keys and name not in defaults for name in order):
            return None  # a parameter Core would fill some other way
        binds = [_bind_processor(compiled.binds[name].type, dialect) for name in order]
        out = list(stmt.exported_columns) if compiled.effective_returning or stmt.is_select else []
        results = [_result_processor(c.type, dialect) for c in out]
        return cls(sql, order, defaults, binds, [c.key for c in out], results, dialect)

    def _args(self, params: dict[str, Any]) -> list[Any]:
        if self.defaults:
            params = {**self.defaults, **params}
        args = [params[n] for n in self.order]
        for i, p in self.binds:
            args[i] = p(args[i])
        return args

    def run(self, conn: Connection, params: dict[str, Any], sent: Optional[dict[str, Any]] = None) -> Any:
        args = self._args(params)
        if sent is not None:
            sent.update(zip(self.order, args))
        try:
            if self.kept_cursor:
                return _kept_cursor(conn).execute(self.sql, args)
            return conn.connection.driver_connection.execute(self.sql, args)
        except self.dialect.loaded_dbapi.Error as err:
            raise as_sqlalchemy_error(self.dialect, self.sql, args, err) from err

    def run_after_insert(self, conn: Connection, insert: "_Plan", rows: list[dict[str, Any]],
                         params: dict[str, Any], sent: Optional[dict[str, Any]] = None) -> int:
        """psycopg: ``insert`` of ``rows`` as a data-modifying CTE of this statement, in one
        round trip; the rows this statement matched."""
        own = self._args(params)
        if sent is not None:
            sent.update(zip(self.order, own))
        sql, args = self.after_insert(insert, len(rows)), [v for r in rows for v in insert._args(r)] + own
        try:
            return int(_kept_cursor(conn).execute(sql, args).rowcount)
        except self.dialect.loaded_dbapi.Error as err:
            raise as_sqlalchemy_error(self.dialect, sql, args, err) from err

    def done(self, cur: Any) -> None:
        """Release a cursor ``run`` gave (psycopg's kept one stays open for the next)."""
        if not self.kept_cursor:
            cur.close()

    def run_many(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        args = [self._args(r) for r in rows]
        driver = conn.connection.driver_connection
        try:
            if not self.kept_cursor:  # sqlite3: its executemany loops in C
                driver.executemany(self.sql, args)
            elif len(args) == 1:
                _kept_cursor(conn).execute(self.sql, args[0])
            else:
                # psycopg's executemany pipelines the rows, which costs more CPU than a round
                # trip saves; one INSERT of all the rows is one statement and one round trip.
                cur = _kept_cursor(conn)
                per = max(1, min(_PG_ROWS_PER_INSERT, _PG_MAX_PARAMS // len(self.order)))
                for i in range(0, len(args), per):
                    chunk = args[i:i + per]
                    cur.execute(self._rows_sql(len(chunk)), [v for a in chunk for v in a])
        except self.dialect.loaded_dbapi.Error as err:
            raise as_sqlalchemy_error(self.dialect, self.sql, args, err, many=True) from err

    def _rows_sql(self, n: int) -> str:
        """The single-row ``INSERT … VALUES (…)`` of this plan for ``n`` rows (made once per n)."""
        try:
            return self._multi[n]
        except KeyError:
            head, sep, values = self.sql.rpartition(" VALUES ")
            if not sep or not values.startswith("(") or not values.endswith(")") or "RETURNING" in values:
                raise ValueError(f"not a one-row INSERT: {self.sql}") from None
            k = len(self.order)  # $1 … $k in the one row; row j gets $(j*k + 1) … $(j*k + k)
            sql = self._multi[n] = head + sep + ", ".join(_shifted(values, j * k) for j in range(n))
            return sql

    def after_insert(self, insert: "_Plan", n: int) -> str:
        """This statement preceded by ``insert`` of ``n`` rows as a data-modifying CTE, its own
        parameters numbered after the insert's (made once per insert and n)."""
        key = (id(insert), n)
        try:
            return self._after[key]
        except KeyError:
            own = _shifted(self.sql, n * len(insert.order))
            sql = self._after[key] = f"WITH sop_inserted AS ({insert._rows_sql(n)}) {own}"
            return sql

    def process(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        values = list(row)
        for i, p in self._processed:  # only the columns that have a processor
            values[i] = p(values[i])
        return self.row._make(values)


_PG_MAX_PARAMS = 32_767  # half of what one PostgreSQL statement may bind (65,535): rows per INSERT
_PG_ROWS_PER_INSERT = 1_000  # ... and at most this many (as SQLAlchemy's insertmanyvalues pages them)


def _kept_cursor(conn: Connection) -> Any:
    """The psycopg cursor kept with a pooled connection: a new cursor per statement (what
    ``Connection.execute`` makes) costs ~25 us of CPU, a fifth of a round trip."""
    info, driver = conn.connection.info, conn.connection.driver_connection
    cur = info.get("sop_cursor")
    if cur is None or cur.closed or cur.connection is not driver:  # (a pool record may reconnect)
        import psycopg

        cur = info["sop_cursor"] = psycopg.RawCursor(driver)
    return cur


def _bind_processor(type_: Any, dialect: Any) -> Optional[Callable[[Any], Any]]:
    """The type's bind processor; for date-times remembered per value. UTCDateTime's (a zone
    conversion, then SQLite's string formatting) is the dearest processor on the hot path,
    and one command binds the same instant several times (occurred_at and recorded_at of
    each event, the projection's last_occurred_at)."""
    impl = type_.dialect_impl(dialect)
    process = impl.bind_processor(dialect)
    if isinstance(type_, tables.UTCDateTime) and process is not None and _writes_like(process, _sqlite_utc_text):
        return _sqlite_utc_text
    if process is None or not isinstance(getattr(impl, "impl_instance", impl), sa.DateTime):
        return process
    return per_instant(process, 64)


def _result_processor(type_: Any, dialect: Any) -> Optional[Callable[[Any], Any]]:
    """The type's result processor; for UTCDateTime on SQLite an exact, faster equivalent.

    SQLAlchemy reads SQLite's text with ``datetime.fromisoformat``, then UTCDateTime makes
    it aware with ``replace(tzinfo=utc)``, whose keyword parsing costs six times the parse
    itself; replay and verification read two times per event. One reader per dialect, so
    a reader of both times of a row sees that they are read alike (and reuses what it read).
    """
    process = type_.dialect_impl(dialect).result_processor(dialect, None)
    if not isinstance(type_, tables.UTCDateTime) or process is None:
        return process
    key = (type(type_), type(dialect), dialect.server_version_info)
    if key not in _UTC_READERS:
        fast = _sqlite_utc_reader(process)
        _UTC_READERS[key] = fast if _reads_like(process, fast) else None
    return _UTC_READERS[key] or process


_UTC_READERS: dict[Any, Optional[Callable[[Any], Any]]] = {}


_NAIVE_EPOCH = datetime(1970, 1, 1)
_UTC_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _sqlite_utc_reader(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """UTCDateTime's value of SQLite's stored text; anything but text goes to ``process``."""
    parse = datetime.fromisoformat

    def read(value: Any) -> Any:
        if type(value) is not str:
            return process(value)
        t = parse(value)  # SQLAlchemy's SQLite parse: the same value, the same ValueError
        if t.tzinfo is None:
            # == t.replace(tzinfo=timezone.utc): aware + timedelta keeps the wall time, fold 0
            return _UTC_EPOCH + (t - _NAIVE_EPOCH)
        return t.astimezone(timezone.utc)

    return read


def _reads_like(process: Callable[[Any], Any], fast: Callable[[Any], Any]) -> bool:
    """Whether ``fast`` gives the processor's value, zone and fold, and its error for text
    that is no time (a dialect with another storage format keeps its own processor)."""
    samples = ("2025-10-14 01:05:20.000000", "0999-01-02 03:04:05.000006", "2025-12-31 23:59:59.999999",
               "2025-12-31T23:59:59+08:00", "2025-10-14", None)
    try:
        for v in samples:
            a, b = process(v), fast(v)
            if a != b or (a is not None and (a.tzinfo is not b.tzinfo or a.fold != b.fold)):
                return False
    except (TypeError, ValueError, OverflowError, AttributeError):  # any doubt: keep SQLAlchemy's processor
        return False
    for bad in ("2025-19-30 01:00:00.000000", "not a time"):
        errors = []
        for read in (process, fast):
            try:
                read(bad)
            except Exception as e:  # noqa: BLE001  (comparing whatever each raises)
                errors.append((type(e), str(e)))
        if len(errors) != 2 or errors[0] != errors[1]:
            return False
    return True


def _utc_text(value: Any) -> Any:
    """UTCDateTime's value as SQLite stores it, in one C call instead of a zone conversion
    plus SQLAlchemy's %-formatting of seven fields."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store")
    return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")


# Remembered for the last few instants: a command binds the same one four or five times.
_sqlite_utc_text = per_instant(_utc_text, 16)


def _writes_like(process: Callable[[Any], Any], fast: Callable[[Any], Any]) -> bool:
    """Whether ``fast`` gives the processor's text (a dialect with another storage format
    keeps its own processor)."""
    samples = (datetime(2025, 10, 1, 0, 0, tzinfo=timezone.utc),
               datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=8))),
               datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))))
    try:
        return all(process(v) == fast(v) for v in samples)
    except (TypeError, ValueError, OverflowError):  # any doubt: keep SQLAlchemy's processor
        return False
