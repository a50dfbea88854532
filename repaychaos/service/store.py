"""The service's SQLite database: ledger, outbox, view and a single group-committing writer.

Why one writer thread: SQLite allows one writer at a time, and a connection per request
turns load into lock waits (write p99 > 1 s at a few hundred writes/s). Here every write
goes through one queue; the writer drains whatever is waiting, runs it as ONE
transaction and resolves the waiting futures only after ``COMMIT`` returned. A ledger row
and its outbox event are written in the same transaction, so an acknowledged repayment
always has its event, and both survive a kill -9 (WAL, ``synchronous=FULL`` by default).

The view and outbox completions ride in the same batches without anyone waiting on them.
Reads use their own connection (WAL readers never block the writer).
"""

from __future__ import annotations

import asyncio
import os
import queue
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

from repaychaos.core.errors import RunFailed

__all__ = ["Store", "LedgerRow", "SCHEMA"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger (
    id TEXT PRIMARY KEY,
    idem_key TEXT NOT NULL UNIQUE,
    account TEXT NOT NULL,
    amount TEXT NOT NULL,
    acked_at REAL NOT NULL,
    held INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY REFERENCES ledger(id),
    account TEXT NOT NULL,
    acked_at REAL NOT NULL,
    held INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS view (
    account TEXT PRIMARY KEY,
    usable INTEGER NOT NULL,
    as_of REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS trace (
    id TEXT PRIMARY KEY,
    changes TEXT NOT NULL,
    touches TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS regressed (
    id TEXT PRIMARY KEY REFERENCES trace(id),
    n INTEGER NOT NULL
);
"""

_MAX_BATCH = 1500
#: Wall seconds the writer waits for other work before committing pending ack restamps alone.
_RESTAMP_IDLE = 0.05


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One committed repayment (``acked_at`` in epoch seconds)."""

    id: str
    key: str
    account: str
    amount: str
    acked_at: float
    held: bool


class Store:
    """The database file plus its writer thread; open with :meth:`open`, then :meth:`start`."""

    def __init__(self, path: str | os.PathLike[str], synchronous: str = "FULL"):
        self.path = os.fspath(path)
        self.synchronous = synchronous
        self._queue: queue.SimpleQueue[tuple | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reader: sqlite3.Connection | None = None
        self.batches = 0
        #: called on the event loop with each newly committed row, before its waiter resumes
        self.on_acked: Callable[[LedgerRow], None] | None = None
        self._restamps: deque[tuple[float, list[str]]] = deque()  # appended on the loop, drained by the writer
        self._as_of: dict[str, float] = {}  # rep_id -> an ack instant earlier than the commit (see repay)
        self.failed: BaseException | None = None

    # ------------------------------------------------------------------ lifecycle

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        return conn

    def open(self) -> None:
        """Create the schema if needed (idempotent: a restart reuses the same file)."""
        try:
            conn = self._connect()
            conn.executescript(SCHEMA)
            conn.close()
            self._reader = self._connect()
        except sqlite3.Error as exc:
            raise RunFailed(f"{self.path}: cannot open the service database ({exc})") from None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="repaychaos-writer", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Commit whatever is queued, then stop the writer and close the connections."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    @property
    def _db(self) -> sqlite3.Connection:
        """The reader connection, between :meth:`open` and :meth:`close`."""
        if self._reader is None:
            raise RuntimeError(f"{self.path}: the store is not open")
        return self._reader

    @property
    def _event_loop(self) -> asyncio.AbstractEventLoop:
        """The loop that awaits the writer's futures, from :meth:`start` on."""
        if self._loop is None:
            raise RuntimeError(f"{self.path}: the store's writer is not started")
        return self._loop

    # ------------------------------------------------------------------ meta

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT v FROM meta WHERE k = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta_now(self, key: str, value: str) -> None:
        """Write a meta value synchronously (only at startup, before the writer runs)."""
        conn = self._connect()
        conn.execute("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v", (key, value))
        conn.close()

    # ------------------------------------------------------------------ writes

    def repay(self, rep_id: str, key: str, account: str, amount: str, held: bool,
              as_of: float | None = None) -> asyncio.Future:
        """Queue a ledger row + outbox event; the future gives ``(acked_at_epoch, LedgerRow | None)``
        after COMMIT (``None`` row = the key was already in the ledger). The ack instant is the
        commit's, or ``as_of`` (epoch) if earlier: a retry taken as of the instant it aimed at."""
        fut = self._event_loop.create_future()
        if as_of is not None:
            self._as_of[rep_id] = as_of
        self._queue.put(("repay", fut, rep_id, key, account, amount, held))
        return fut

    def forget_as_of(self, rep_id: str) -> None:
        """Drop a pending ``as_of`` of :meth:`repay` whose row was not committed as new."""
        self._as_of.pop(rep_id, None)

    def write_view(self, account: str, usable: bool, as_of: float, done_id: str | None) -> None:
        """Queue a view write (epoch ``as_of``); ``done_id`` also completes that outbox event."""
        self._queue.put(("view", None, account, usable, as_of, done_id))

    def outbox_done(self, rep_id: str) -> None:
        """Queue the completion of an outbox event whose message ended without a view write."""
        self._queue.put(("done", None, rep_id))

    def spill(self, rows: list[tuple[str, str, str]], regressed: Sequence[tuple[str, int]] = ()) -> asyncio.Future:
        """Queue finished traces ``(id, changes_json, touches_json)`` and, for a shared account's
        repayments, how many regressions their writes made ``(id, n)``, n > 0 (docs/explanation/
        semantics.md 14a); the future resolves after COMMIT (and so after every view write
        queued before it)."""
        fut = self._event_loop.create_future()
        self._queue.put(("spill", fut, rows, list(regressed)))
        return fut

    def flush(self) -> asyncio.Future:
        """A future that resolves once everything queued before it is committed."""
        fut = self._event_loop.create_future()
        self._queue.put(("flush", fut))
        return fut

    def _run(self) -> None:
        loop = self._event_loop
        conn = self._connect()
        get = self._queue.get
        get_nowait = self._queue.get_nowait
        stop = False
        while not stop:
            try:
                item = get(timeout=_RESTAMP_IDLE) if self._restamps else get()
            except queue.Empty:  # idle: record the pending ack instants on their own
                item = ("flush", None)
            if item is None:
                break
            batch = [item]
            while len(batch) < _MAX_BATCH:
                try:
                    item = get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            restamps = []
            while self._restamps:
                restamps.append(self._restamps.popleft())
            batch.extend(("restamp", None, now, ids) for now, ids in restamps)
            try:
                results = self._apply(conn, batch)
            except Exception as exc:  # nothing in this batch is acked; the callers see RunFailed
                self.failed = exc
                results = [(op[1], exc) for op in batch if op[1] is not None]
                loop.call_soon_threadsafe(_resolve, results, True)
                continue
            if results:
                loop.call_soon_threadsafe(self._acked, results)
            self.batches += 1
        if self._restamps:
            try:
                self._apply(conn, [("restamp", None, now, ids) for now, ids in self._restamps])
            except Exception as exc:  # the rows keep their transaction start time; nothing is lost
                self.failed = exc
        conn.close()

    def _acked(self, results: list[tuple[asyncio.Future, Any]]) -> None:
        """On the event loop, once a batch is committed: the ack instant of its new rows is NOW,
        when the service learns of the commit (it can answer 201 and its outbox relay can start
        only from here; the model's stages start at the ack). Each row is published through
        ``on_acked`` in this very callback (no further hop), its waiter gets the row, and the
        ledger is restamped with that instant in the writer's next transaction (until then, a
        few ms, a reader or a kill -9 sees the transaction's start time, earlier by the commit)."""
        now = time.time()
        ids = []
        for fut, value in results:
            if isinstance(value, tuple) and value[1] is not None:
                as_of = self._as_of.pop(value[1].id, None)
                at = now if as_of is None else min(as_of, now)
                value = (at, replace(value[1], acked_at=at))
                if at == now:
                    ids.append(value[1].id)
                else:
                    self._restamps.append((at, [value[1].id]))
                if self.on_acked is not None:
                    self.on_acked(value[1])
            if not fut.done():
                fut.set_result(value)
        if ids:
            self._restamps.append((now, ids))  # rides along with the writer's next batch

    @staticmethod
    def _apply(conn: sqlite3.Connection, batch: list[tuple]) -> list[tuple[asyncio.Future, Any]]:
        """One transaction for the whole batch, with one multi-row statement per table.

        Few statements matter more than few rows: every ``sqlite3`` step releases and
        re-takes the GIL, and each re-take can wait a whole switch interval behind the
        busy event loop, so a statement per row would cap the writer far below the disk.

        Rows are written with the transaction's start time; ``restamp`` ops (queued by
        :meth:`_acked`) set them to their ack instant.
        """
        now = time.time()
        repays = [op for op in batch if op[0] == "repay"]
        views: dict[str, tuple[str, int, float]] = {}
        done: list[str] = []
        spilled = [row for op in batch if op[0] == "spill" for row in op[2]]
        regressed = [row for op in batch if op[0] == "spill" for row in op[3]]
        for op in batch:
            if op[0] == "view":
                _, _, account, usable, as_of, done_id = op
                views[account] = (account, int(usable), as_of)
                if done_id is not None:
                    done.append(done_id)
            elif op[0] == "done":
                done.append(op[2])
        execute = conn.execute
        execute("BEGIN IMMEDIATE")
        try:
            try:
                results = _insert_repayments(conn, repays, now, fast=True)
            except sqlite3.IntegrityError:
                # a key already in the ledger (cannot happen through the service's own dedupe,
                # but a second process on the same file could do it): row by row, again
                execute("ROLLBACK")
                execute("BEGIN IMMEDIATE")
                results = _insert_repayments(conn, repays, now, fast=False)
            rows = list(views.values())
            for chunk in _chunks(rows, 300):
                execute("INSERT INTO view (account, usable, as_of) VALUES " + _marks(len(chunk), 3)
                        + " ON CONFLICT(account) DO UPDATE SET usable = excluded.usable, as_of = excluded.as_of",
                        [v for row in chunk for v in row])
            for chunk in _chunks(spilled, 300):
                execute("INSERT OR REPLACE INTO trace (id, changes, touches) VALUES " + _marks(len(chunk), 3),
                        [v for row in chunk for v in row])
            for chunk in _chunks(regressed, 450):
                execute("INSERT OR REPLACE INTO regressed (id, n) VALUES " + _marks(len(chunk), 2),
                        [v for row in chunk for v in row])
            for chunk in _chunks(done, 900):
                execute("DELETE FROM outbox WHERE id IN (" + ",".join("?" * len(chunk)) + ")", chunk)
            for op in batch:
                if op[0] == "restamp":
                    for chunk in _chunks(op[3], 900):
                        execute("UPDATE ledger SET acked_at = ? WHERE id IN (" + ",".join("?" * len(chunk)) + ")",
                                [op[2], *chunk])
            execute("COMMIT")
        except BaseException:
            try:
                execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise
        results.extend((op[1], now) for op in batch if op[0] in ("flush", "spill") and op[1] is not None)
        return results

    # ------------------------------------------------------------------ reads

    def ledger_row(self, rep_id: str) -> LedgerRow | None:
        row = self._db.execute(
            "SELECT id, idem_key, account, amount, acked_at, held FROM ledger WHERE id = ?", (rep_id,)).fetchone()
        return None if row is None else LedgerRow(row[0], row[1], row[2], row[3], row[4], bool(row[5]))

    def ledger_by_key(self, key: str) -> LedgerRow | None:
        row = self._db.execute(
            "SELECT id, idem_key, account, amount, acked_at, held FROM ledger WHERE idem_key = ?", (key,)).fetchone()
        return None if row is None else LedgerRow(row[0], row[1], row[2], row[3], row[4], bool(row[5]))

    def all_ledger(self) -> list[LedgerRow]:
        rows = self._db.execute("SELECT id, idem_key, account, amount, acked_at, held FROM ledger").fetchall()
        return [LedgerRow(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows]

    def pending_outbox(self) -> list[tuple[str, str, float, bool]]:
        """Outbox events not yet completed (to republish after a restart), oldest first."""
        rows = self._db.execute("SELECT id, account, acked_at, held FROM outbox ORDER BY acked_at").fetchall()
        return [(r[0], r[1], r[2], bool(r[3])) for r in rows]

    def all_views(self) -> dict[str, tuple[bool, float]]:
        rows = self._db.execute("SELECT account, usable, as_of FROM view").fetchall()
        return {r[0]: (bool(r[1]), r[2]) for r in rows}

    def view_row(self, account: str) -> tuple[bool, float] | None:
        """The committed view of one account ``(usable, as_of epoch)``, or None."""
        row = self._db.execute("SELECT usable, as_of FROM view WHERE account = ?", (account,)).fetchone()
        return None if row is None else (bool(row[0]), row[1])

    def spilled_traces(self) -> dict[str, tuple[str, str]]:
        """Every spilled trace: id -> (changes_json, touches_json)."""
        return {r[0]: (r[1], r[2]) for r in self._db.execute("SELECT id, changes, touches FROM trace")}

    def spilled_regressions(self) -> dict[str, int]:
        """Spilled repayments whose writes put their account's view back: id -> how many times."""
        return {r[0]: r[1] for r in self._db.execute("SELECT id, n FROM regressed")}

    def spilled_account(self, rep_id: str) -> str | None:
        """The account of a repayment whose trace was spilled, or None."""
        row = self._db.execute("SELECT l.account FROM trace t JOIN ledger l ON l.id = t.id WHERE t.id = ?",
                               (rep_id,)).fetchone()
        return None if row is None else str(row[0])

    def duplicate_rows(self) -> int:
        """Ledger rows beyond one per idempotency key (the UNIQUE index should keep this 0)."""
        row = self._db.execute("SELECT COUNT(*) - COUNT(DISTINCT idem_key) FROM ledger").fetchone()
        return int(row[0])


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


_MARKS: dict[tuple[int, int], str] = {}


def _marks(rows: int, cols: int) -> str:
    """``(?,?,?),(?,?,?)`` for a multi-row VALUES clause (cached: the same sizes recur)."""
    text = _MARKS.get((rows, cols))
    if text is None:
        text = _MARKS[(rows, cols)] = ",".join(["(" + ",".join("?" * cols) + ")"] * rows)
    return text


def _insert_repayments(conn: sqlite3.Connection, repays: list[tuple], now: float,
                       fast: bool) -> list[tuple[asyncio.Future, Any]]:
    """Ledger rows and their outbox events; ``fast`` = multi-row (fails whole on a duplicate key)."""
    results: list[tuple[asyncio.Future, Any]] = []
    if fast:
        for chunk in _chunks(repays, 150):
            conn.execute("INSERT INTO ledger (id, idem_key, account, amount, acked_at, held) VALUES "
                         + _marks(len(chunk), 6),
                         [v for _, _, rep_id, key, account, amount, held in chunk
                          for v in (rep_id, key, account, amount, now, int(held))])
            conn.execute("INSERT INTO outbox (id, account, acked_at, held) VALUES " + _marks(len(chunk), 4),
                         [v for _, _, rep_id, _key, account, _amount, held in chunk
                          for v in (rep_id, account, now, int(held))])
        for _, fut, rep_id, key, account, amount, held in repays:
            results.append((fut, (now, LedgerRow(rep_id, key, account, amount, now, held))))
        return results
    for _, fut, rep_id, key, account, amount, held in repays:
        cur = conn.execute("INSERT INTO ledger (id, idem_key, account, amount, acked_at, held) VALUES (?, ?, ?, ?, ?, ?)"
                           " ON CONFLICT(idem_key) DO NOTHING", (rep_id, key, account, amount, now, int(held)))
        if cur.rowcount == 1:
            conn.execute("INSERT INTO outbox (id, account, acked_at, held) VALUES (?, ?, ?, ?)",
                         (rep_id, account, now, int(held)))
            results.append((fut, (now, LedgerRow(rep_id, key, account, amount, now, held))))
        else:
            results.append((fut, (now, None)))
    return results


def _resolve(results: list[tuple[asyncio.Future, Any]], failed: bool) -> None:
    for fut, value in results:
        if fut.done():
            continue
        if failed:
            fut.set_exception(RunFailed(f"the ledger write failed: {value}"))
        else:
            fut.set_result(value)
