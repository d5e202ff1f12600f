"""API keys: each belongs to a tenant with a role (and, for members, a user). Only a hash of a
key is stored; the key itself is shown once, when it is created."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

from domain.errors import InvalidError, NotFoundError
from domain.values import Scope

ROLES = ("admin", "member")
KEY_PREFIX = "ll_"
# Positive look-ups are remembered briefly so a request costs no query; a revoked key stops
# working in other processes within this many seconds (at once in the revoking process).
CACHE_SECONDS = 5.0

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS api_keys ("
    "id TEXT PRIMARY KEY, key_hash TEXT NOT NULL UNIQUE, tenant_id TEXT NOT NULL, "
    "role TEXT NOT NULL, user_id TEXT, created_at TEXT NOT NULL, revoked_at TEXT)"
)


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    tenant_id: str
    role: str
    user_id: str | None
    created_at: str
    revoked_at: str | None = None

    @property
    def scope(self) -> Scope:
        return Scope(self.tenant_id, self.user_id, is_admin=self.role == "admin")


class KeyNotFoundError(NotFoundError):
    def __init__(self, key_id: str) -> None:
        super().__init__(f"no API key with id {key_id}")


def key_hash(key: str) -> str:
    # Keys are 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeyStore:
    def __init__(self, datastore: SQLiteDatastore | PostgresDatastore) -> None:
        self.datastore = datastore
        self.is_postgres = isinstance(datastore, PostgresDatastore)
        self._cache: dict[str, tuple[float, ApiKey]] = {}
        self._lock = threading.Lock()
        with self._cursor(write=True) as c:
            c.execute(SCHEMA)

    @contextmanager
    def _cursor(self, *, write: bool) -> Iterator[Any]:
        with self.datastore.transaction(commit=write) as c:
            yield c

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.is_postgres else statement

    def create(self, tenant_id: str, role: str, user_id: str | None = None) -> tuple[ApiKey, str]:
        """A new key and its secret, which is not kept anywhere."""
        if role not in ROLES:
            raise InvalidError("role", f"must be one of {', '.join(ROLES)}")
        if not tenant_id.strip():
            raise InvalidError("tenant", "must not be empty")
        if role == "member" and not user_id:
            raise InvalidError("user", "a member key needs the user it acts for")
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        record = ApiKey(
            id=secrets.token_hex(6),
            tenant_id=tenant_id,
            role=role,
            user_id=user_id,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        self.add(record, secret)
        return record, secret

    def add(self, record: ApiKey, secret: str) -> None:
        with self._cursor(write=True) as c:
            c.execute(
                self._sql(
                    "INSERT INTO api_keys (id, key_hash, tenant_id, role, user_id, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)"
                ),
                (
                    record.id,
                    key_hash(secret),
                    record.tenant_id,
                    record.role,
                    record.user_id,
                    record.created_at,
                ),
            )

    def list(self, tenant_id: str | None = None) -> list[ApiKey]:
        statement = "SELECT * FROM api_keys"
        params: tuple[str, ...] = ()
        if tenant_id is not None:
            statement += " WHERE tenant_id = ?"
            params = (tenant_id,)
        with self._cursor(write=False) as c:
            c.execute(self._sql(statement + " ORDER BY created_at, id"), params)
            return [_record(row) for row in c.fetchall()]

    def revoke(self, key_id: str) -> ApiKey:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._cursor(write=True) as c:
            c.execute(
                self._sql("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"),
                (now, key_id),
            )
        with self._lock:
            self._cache.clear()
        for record in self.list():
            if record.id == key_id:
                return record
        raise KeyNotFoundError(key_id)

    def any_active(self) -> bool:
        with self._cursor(write=False) as c:
            c.execute("SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1")
            return c.fetchone() is not None

    def lookup(self, secret: str) -> ApiKey | None:
        """The active key with this secret, or None."""
        digest = key_hash(secret)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        with self._cursor(write=False) as c:
            c.execute(
                self._sql("SELECT * FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL"),
                (digest,),
            )
            row = c.fetchone()
        if row is None:
            return None
        record = _record(row)
        with self._lock:
            self._cache[digest] = (now + CACHE_SECONDS, record)
        return record


def _record(row: Any) -> ApiKey:
    return ApiKey(
        id=row["id"],
        tenant_id=row["tenant_id"],
        role=row["role"],
        user_id=row["user_id"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


def bootstrap(store: ApiKeyStore, configured: str, tenant_id: str = "default") -> str | None:
    """The first admin key. With `configured` (LIFELINE_BOOTSTRAP_API_KEY) that key is adopted;
    without it one is made and returned, to be shown once. Does nothing once any key exists."""
    if store.any_active():
        return None
    if configured:
        record = ApiKey(
            id="bootstrap",
            tenant_id=tenant_id,
            role="admin",
            user_id=None,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        if store.lookup(configured) is None:
            store.add(record, configured)
        return None
    _, secret = store.create(tenant_id, "admin")
    return secret
