"""Turns `LIFELINE_DATABASE_URL` into the eventsourcing library's own settings.

Nothing else in Lifeline knows which store it runs on.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from eventsourcing.cryptography import AESCipher
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

from adapters.settings import Settings
from domain.application import Lifeline


class StoreConfigError(ValueError):
    """The database URL or the cipher key cannot be used."""


def cipher_key(settings: Settings) -> str:
    if settings.cipher_key:
        try:
            size = len(base64.b64decode(settings.cipher_key, validate=True))
        except ValueError:
            raise StoreConfigError("LIFELINE_CIPHER_KEY must be base64") from None
        if size not in AESCipher.KEY_SIZES:
            raise StoreConfigError("LIFELINE_CIPHER_KEY must decode to 16, 24 or 32 bytes")
        return settings.cipher_key
    # A fresh machine gets a key of its own, kept beside the data, never in the events.
    path = Path(settings.key_file)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(AESCipher.create_key(32))
    return path.read_text().strip()


def store_env(settings: Settings) -> dict[str, str]:
    url = settings.database_url
    env = {
        "CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher",
        "CIPHER_KEY": cipher_key(settings),
        Lifeline.SNAPSHOT_INTERVAL: str(settings.snapshot_interval),
        # Recently used aggregates stay in memory and are fast-forwarded with newer events
        # (from any process) on load, so a command rarely re-reads and decrypts a stream.
        "AGGREGATE_CACHE_MAXSIZE": "10000",
    }
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if not path:
            raise StoreConfigError("LIFELINE_DATABASE_URL sqlite:/// needs a file path")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        env.update(
            PERSISTENCE_MODULE="adapters.sqlite_store:Factory",
            SQLITE_DBNAME=path,
            SQLITE_LOCK_TIMEOUT="30",
        )
        return env
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise StoreConfigError(
            f"LIFELINE_DATABASE_URL must start with sqlite:/// or postgresql://, not {url!r}"
        )
    env.update(
        PERSISTENCE_MODULE="adapters.postgres_store:Factory",
        POSTGRES_DBNAME=parts.path.lstrip("/") or "postgres",
        POSTGRES_HOST=parts.hostname or "127.0.0.1",
        POSTGRES_PORT=str(parts.port or 5432),
        POSTGRES_USER=unquote(parts.username or "postgres"),
        POSTGRES_PASSWORD=unquote(parts.password or ""),
        # Enough for the API's worker threads (40) without queueing for a connection.
        POSTGRES_POOL_SIZE="8",
        POSTGRES_MAX_OVERFLOW="32",
        POSTGRES_CONNECT_TIMEOUT="10",
        POSTGRES_LOCK_TIMEOUT="10",
        POSTGRES_PRE_PING="y",
    )
    return env


def open_application(settings: Settings, **kwargs: Any) -> Lifeline:
    return Lifeline(store_env(settings), **kwargs)


def datastore_of(app: Lifeline) -> SQLiteDatastore | PostgresDatastore:
    """The application's connection pool, which the views share."""
    datastore = getattr(app.factory, "datastore", None)
    if not isinstance(datastore, SQLiteDatastore | PostgresDatastore):
        raise StoreConfigError("this store has no SQL datastore for views")
    return datastore
