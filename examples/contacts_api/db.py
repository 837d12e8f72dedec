"""SQLite storage for the contacts example (stdlib ``sqlite3`` only).

Design choices a reviewer should know about:

* Owners are keyed by ``(issuer, sub)``, never by ``sub`` alone: OpenID
  Connect Core 1.0 section 2 only promises that ``sub`` is unique *within an
  issuer*, so an API that may one day trust two issuers must not let their
  subjects collide.
* One short-lived connection per unit of work (``Store.connect()``), so no
  connection object is ever shared between threads (sqlite3 connections are
  not thread-safe by default; ``check_same_thread`` stays on as a tripwire).
  WAL journal mode lets readers and one writer work side by side, and
  ``busy_timeout`` makes a writer wait for the lock instead of failing.
* Every statement uses ``?`` placeholders: no SQL is ever built from input.
* Nothing here sends anything to anyone: importing a contact only associates
  an e-mail address with the caller's own account.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

__all__ = ["Store", "ImportResult"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS contacts (
    owner_iss   TEXT    NOT NULL,
    owner_sub   TEXT    NOT NULL,
    email       TEXT    NOT NULL,
    -- dedupe key: addresses that differ only in letter case are one contact
    email_key   TEXT    NOT NULL,
    added_at    INTEGER NOT NULL,
    PRIMARY KEY (owner_iss, owner_sub, email_key)
);
CREATE TABLE IF NOT EXISTS wte_jobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    issuer      TEXT    NOT NULL,
    client_id   TEXT,
    subject     TEXT,
    kind        TEXT    NOT NULL,
    payload     TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
"""


class ImportResult:
    """What one import did: how many addresses were new, how many the
    caller already had (or sent twice), and the caller's new total."""

    __slots__ = ("added", "duplicates", "total")

    def __init__(self, added: int, duplicates: int, total: int) -> None:
        self.added = added
        self.duplicates = duplicates
        self.total = total

    def to_dict(self) -> Dict[str, int]:
        return {"added": self.added, "duplicates": self.duplicates, "total": self.total}


class ContactLimitExceeded(Exception):
    """The import would take the caller over ``max_contacts``."""


class Store:
    """The example's data: contacts per owner and recorded back-end jobs."""

    def __init__(self, path: str, *, max_contacts_per_owner: int = 5000, busy_timeout_s: float = 5.0) -> None:
        self.path = path
        self.max_contacts_per_owner = max_contacts_per_owner
        self._busy_timeout_s = busy_timeout_s
        directory = os.path.dirname(os.path.abspath(path))
        # Contacts are personal data: a new folder is readable by its owner only.
        os.makedirs(directory, mode=0o700, exist_ok=True)
        with self.connect() as conn:
            # WAL is a property of the database file: set once, kept across restarts.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A fresh connection for one unit of work, committed on success,
        rolled back on error, always closed."""
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s)
        try:
            conn.execute("PRAGMA foreign_keys=ON")
            yield conn
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()

    # --- contacts ----------------------------------------------------------
    def import_contacts(self, owner_iss: str, owner_sub: str, emails: Sequence[str]) -> ImportResult:
        """Associate ``emails`` (already validated and normalised) with the
        owner.  Atomic: either every new address is stored or none is."""
        now = int(time.time())
        seen_in_request = set()
        rows: List[Tuple[str, str, str, str, int]] = []
        duplicates = 0
        for email in emails:
            key = email.casefold()
            if key in seen_in_request:
                duplicates += 1
                continue
            seen_in_request.add(key)
            rows.append((owner_iss, owner_sub, email, key, now))
        with self.connect() as conn:
            # BEGIN IMMEDIATE takes the write lock now, so the limit check and
            # the inserts see the same count even with concurrent imports.
            conn.execute("BEGIN IMMEDIATE")
            before = self._count(conn, owner_iss, owner_sub)
            added = 0
            for row in rows:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO contacts (owner_iss, owner_sub, email, email_key, added_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    row,
                )
                if cur.rowcount == 1:
                    added += 1
                else:
                    duplicates += 1
            total = before + added
            if total > self.max_contacts_per_owner:
                raise ContactLimitExceeded(
                    f"an account can hold at most {self.max_contacts_per_owner} contacts;"
                    f" this import would make {total}"
                )
        return ImportResult(added, duplicates, total)

    def list_contacts(self, owner_iss: str, owner_sub: str) -> List[Dict[str, Any]]:
        with self.connect() as conn:
            cur = conn.execute(
                "SELECT email, added_at FROM contacts WHERE owner_iss = ? AND owner_sub = ?"
                " ORDER BY email_key",
                (owner_iss, owner_sub),
            )
            return [{"email": email, "added_at": added_at} for email, added_at in cur.fetchall()]

    def delete_contact(self, owner_iss: str, owner_sub: str, email: str) -> bool:
        """Remove one of the owner's addresses (compared case-insensitively);
        ``False`` when the owner has no such address."""
        with self.connect() as conn:
            cur = conn.execute(
                "DELETE FROM contacts WHERE owner_iss = ? AND owner_sub = ? AND email_key = ?",
                (owner_iss, owner_sub, email.casefold()),
            )
            return cur.rowcount == 1

    @staticmethod
    def _count(conn: sqlite3.Connection, owner_iss: str, owner_sub: str) -> int:
        cur = conn.execute(
            "SELECT COUNT(*) FROM contacts WHERE owner_iss = ? AND owner_sub = ?",
            (owner_iss, owner_sub),
        )
        return int(cur.fetchone()[0])

    # --- back-end jobs -----------------------------------------------------
    def record_job(
        self, issuer: str, client_id: Optional[str], subject: Optional[str], kind: str, payload: Dict[str, Any]
    ) -> Dict[str, Any]:
        now = int(time.time())
        body = json.dumps(payload, sort_keys=True)
        with self.connect() as conn:
            cur = conn.execute(
                "INSERT INTO wte_jobs (issuer, client_id, subject, kind, payload, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (issuer, client_id, subject, kind, body, now),
            )
            job_id = cur.lastrowid
        return {"id": job_id, "client_id": client_id, "subject": subject, "kind": kind, "created_at": now}

    def count_jobs(self, client_id: Optional[str] = None) -> int:
        with self.connect() as conn:
            if client_id is None:
                cur = conn.execute("SELECT COUNT(*) FROM wte_jobs")
            else:
                cur = conn.execute("SELECT COUNT(*) FROM wte_jobs WHERE client_id = ?", (client_id,))
            return int(cur.fetchone()[0])
