"""A writer that commits continuously during a fault, as an application would.

It inserts one row at a time (autocommit) through a libpq multi-host
connection string with target_session_attrs=read-write, reconnecting after
any error, and remembers every id whose commit was acknowledged and when.
Afterwards `lost` lists the acknowledged ids the database no longer has, and
`longest_gap` says how long writes stopped after a moment (the fault).
An insert whose outcome is unknown (the connection broke before the reply)
is not acknowledged, so it may or may not be there: only acknowledged ones count.
"""

from __future__ import annotations

import threading
import time

import psycopg

TABLE = "write_probe"


class WriteProbe:
    def __init__(self, conninfo: str, user: str, password: str, interval: float = 0.05,
                 table: str = TABLE) -> None:
        """`table`: its own for each of two probes writing at once (their ids would collide)."""
        self.conninfo = conninfo
        self.table = table
        self.user = user
        self.password = password
        self.interval = interval
        self.acknowledged: list[tuple[int, float]] = []  # (id, monotonic time of the reply)
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_id = 1

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(self.conninfo, user=self.user, password=self.password, autocommit=True)

    def start(self) -> WriteProbe:
        with self._connect() as conn:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {self.table} (id bigint PRIMARY KEY, at timestamptz DEFAULT now())")
            self._next_id = conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {self.table}").fetchone()[0]
        self._thread = threading.Thread(target=self._run, name="write-probe", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        conn: psycopg.Connection | None = None
        while not self._stop.is_set():
            row_id = self._next_id
            self._next_id += 1
            try:
                if conn is None:
                    conn = self._connect()
                conn.execute(f"INSERT INTO {self.table} (id) VALUES (%s)", (row_id,))
                self.acknowledged.append((row_id, time.monotonic()))
            except psycopg.Error:
                self.errors += 1
                if conn is not None:
                    conn.close()
                conn = None
            self._stop.wait(self.interval)
        if conn is not None:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def acknowledged_since(self, moment: float) -> int:
        return sum(1 for _, at in self.acknowledged if at > moment)

    def longest_gap(self, since: float) -> float:
        """The longest time without an acknowledged write from `since` on (from the
        last acknowledgement before it): how long writes stopped during a fault,
        even when the old leader still took some after `since`."""
        times = [at for _, at in self.acknowledged]
        before = [at for at in times if at <= since]
        window = before[-1:] + [at for at in times if at > since]
        return max((b - a for a, b in zip(window, window[1:])), default=0.0)

    def lost(self, conn: psycopg.Connection) -> list[int]:
        """Acknowledged ids that `conn`'s database does not have."""
        present = {row[0] for row in conn.execute(f"SELECT id FROM {self.table}")}
        return [row_id for row_id, _ in self.acknowledged if row_id not in present]
