"""`lifeline serve` and `lifeline keys`: running the API and managing its keys."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
import uvicorn

from adapters.api_keys import ApiKeyStore
from adapters.settings import get_settings
from adapters.store import datastore_of, open_application


@click.command()
@click.option("--host", default=None, help="interface to bind (LIFELINE_HOST, 127.0.0.1)")
@click.option("--port", default=None, type=int, help="port (LIFELINE_PORT, 8000)")
def serve(host: str | None, port: int | None) -> None:
    """Serve the REST API (and, unless LIFELINE_IN_PROCESS=false, the projections)."""
    from api.app import create_app  # noqa: PLC0415 - keeps other commands fast

    settings = get_settings()
    bind_host, bind_port = host or settings.host, port or settings.port
    click.echo(
        f"Lifeline on http://{bind_host}:{bind_port} (API docs at /schema), "
        f"store {settings.database_url}",
        err=True,
    )
    uvicorn.run(
        create_app(settings),
        host=bind_host,
        port=bind_port,
        log_level=settings.log_level,
        access_log=False,
    )


@click.group()
def keys() -> None:
    """Create, list and revoke API keys."""


@contextmanager
def _store() -> Iterator[ApiKeyStore]:
    # The application owns the connection pool; it must outlive the key store's use of it.
    app = open_application(get_settings())
    try:
        yield ApiKeyStore(datastore_of(app))
    finally:
        app.close()


@keys.command("create")
@click.option("--tenant", required=True, help="the tenant the key acts for")
@click.option("--role", type=click.Choice(["admin", "member"]), default="member")
@click.option("--user", default=None, help="the user a member key acts for")
def create_key(tenant: str, role: str, user: str | None) -> None:
    """Print a new key once, alone on standard output (details go to standard error)."""
    with _store() as store:
        record, secret = store.create(tenant, role, user)
    click.echo(
        f"created key {record.id}: tenant {tenant}, role {role}, user {user or '-'}", err=True
    )
    click.echo(secret)


@keys.command("list")
@click.option("--tenant", default=None)
def list_keys(tenant: str | None) -> None:
    """List keys (ids, tenants and roles; never the keys themselves)."""
    with _store() as store:
        records = store.list(tenant)
    for record in records:
        state = f"revoked {record.revoked_at}" if record.revoked_at else "active"
        click.echo(
            f"{record.id}\t{record.tenant_id}\t{record.role}\t{record.user_id or '-'}\t"
            f"{record.created_at}\t{state}"
        )


@keys.command("revoke")
@click.argument("key_id")
def revoke_key(key_id: str) -> None:
    """Revoke a key by its id (from `lifeline keys list`)."""
    with _store() as store:
        record = store.revoke(key_id)
    click.echo(f"revoked key {record.id} of tenant {record.tenant_id}", err=True)
