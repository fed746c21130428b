"""The answers of an experiment in one SQLite file (the standard library's ``sqlite3``).

One file a class can share (on the course server that runs every student's kernel) or collect
afterwards (one file per student, read together by ``analyze``). Each answer is written and
committed the moment it is given: a kernel restart, a closed tab or a killed process loses
nothing that was answered. Several processes may answer into the same file at once: the file is
in write-ahead-log mode (readers never block the writer) and a writer waits up to ``timeout``
seconds for another's write instead of failing. Each answer is one short ``BEGIN IMMEDIATE``
transaction, so concurrent writers queue and none is lost.

WAL needs the processes to be on one machine (shared memory); on a network file system (NFS)
give each student a file of their own and analyze them together.

Example
-------
>>> answers = Answers("class.sqlite")
>>> answers.record("ada", ts[0], choice=1, seconds=3.2, confidence=2)
>>> len(answers), answers.rows()[0]["correct"]
"""
from __future__ import annotations

import contextlib
import datetime
import sqlite3
from pathlib import Path

from .. import _checks

COLUMNS = ("participant", "trial", "condition", "layer", "unit", "choice", "correct_choice",
           "correct", "seconds", "confidence", "time")
SCHEMA = """CREATE TABLE IF NOT EXISTS answers (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    participant    TEXT    NOT NULL,
    trial          TEXT    NOT NULL,   -- Trial.id: a hash of the seed and the trial's content
    condition      TEXT    NOT NULL,
    layer          TEXT    NOT NULL,
    unit           INTEGER NOT NULL,   -- the channel k of the layer
    choice         INTEGER NOT NULL,   -- 0: left query, 1: right query
    correct_choice INTEGER NOT NULL,   -- the query that activates the unit more
    correct        INTEGER NOT NULL,   -- 1 when choice == correct_choice
    seconds        REAL,               -- time to answer (None: not measured)
    confidence     INTEGER,            -- the participant's confidence (None: not asked)
    time           TEXT    NOT NULL    -- UTC time stamp, ISO 8601
)"""


class Answers:
    """The answers in the SQLite file ``path`` (created with its table when missing).

    ``record`` writes and commits one answer; ``rows`` reads them all back (dicts with the keys
    ``COLUMNS``). It holds no open connection: any thread or process may use it.
    """

    def __init__(self, path, timeout: float = 60.0):
        self.path = Path(path)
        self.timeout = float(timeout)
        with self._connect() as db:
            db.execute(SCHEMA)

    @contextlib.contextmanager
    def _connect(self):
        """A fresh connection for one operation, closed after it: autocommit (each transaction
        is opened by hand), WAL mode, a busy timeout. One per operation, so an ``Answers`` works
        from any thread (a widget's callbacks) and any process (multiprocessing)."""
        db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        try:
            db.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            yield db
        finally:
            db.close()

    def record(self, participant, trial, choice, seconds=None, confidence=None) -> bool:
        """Write one answer and commit it: ``participant`` (a name or code) chose query
        ``choice`` (0 left, 1 right) in ``trial`` (a ``Trial``: it knows the right answer).
        ``seconds``: how long it took; ``confidence``: an int scale of your choosing. Returns
        whether the choice was correct."""
        row = self.answer_row(participant, trial, choice, seconds, confidence)
        self.record_rows([row])
        return bool(row[7])

    def answer_row(self, participant, trial, choice, seconds=None, confidence=None) -> tuple:
        """The row ``record`` writes (checked, time-stamped now), for ``record_rows``."""
        if not isinstance(participant, str) or not participant.strip():
            raise ValueError(f"participant must be a non-empty string, got {participant!r}")
        if not hasattr(trial, "correct"):
            raise TypeError(f"trial must be a study Trial (it knows the answer), got "
                            f"{type(trial).__name__}")
        if choice not in (0, 1) or isinstance(choice, bool):
            raise ValueError(f"choice must be 0 (left query) or 1 (right query), got {choice!r}")
        if seconds is not None and (not _checks.is_number(seconds) or seconds < 0):
            raise ValueError(f"seconds must be None or a number >= 0, got {seconds!r}")
        if confidence is not None and not _checks.is_int(confidence):
            raise ValueError(f"confidence must be None or an int, got {confidence!r}")
        stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
        return (participant.strip(), trial.id, trial.condition, trial.layer, trial.unit.channel,
                int(choice), int(trial.correct), int(choice == trial.correct),
                None if seconds is None else float(seconds),
                None if confidence is None else int(confidence), stamp)

    def record_rows(self, rows) -> None:
        """Write rows (tuples in ``COLUMNS`` order) in ONE transaction, committed at its end."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(f"INSERT INTO answers ({', '.join(COLUMNS)}) VALUES "
                               f"({', '.join('?' * len(COLUMNS))})", rows)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def rows(self, participant=None) -> list:
        """Every answer (of ``participant``, when given) as a dict, in the order given."""
        query = f"SELECT {', '.join(COLUMNS)} FROM answers"
        args = ()
        if participant is not None:
            query, args = query + " WHERE participant = ?", (participant,)
        with self._connect() as db:
            return [dict(zip(COLUMNS, row)) for row in db.execute(query + " ORDER BY id", args)]

    def answered(self, participant) -> set:
        """The ids of the trials ``participant`` has answered (to go on after a restart)."""
        with self._connect() as db:
            rows = db.execute("SELECT trial FROM answers WHERE participant = ?", (participant,))
            return {trial for (trial,) in rows}

    def __len__(self) -> int:
        with self._connect() as db:
            return db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def __repr__(self) -> str:
        return f"Answers({str(self.path)!r}, {len(self)} answers)"
