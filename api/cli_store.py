"""CLI commands over the event store: history, replay, running and rebuilding projections."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import click
import msgspec
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from adapters.rebuild import rebuild as rebuild_view
from adapters.services import Services
from adapters.settings import get_settings
from adapters.views.registry import READ_MODELS
from api.cli_workers import run_until_stopped
from domain.errors import InvalidError


def _services() -> Services:
    return Services(get_settings())


def _uuid(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise InvalidError("INSTANCE_ID", f"{value!r} is not a UUID") from None


@click.command()
@click.argument("instance_id")
def history(instance_id: str) -> None:
    """Print an instance's timeline: every event, in order, secrets masked."""
    services = _services()
    try:
        table = Table("position", "version", "time", "event", "fields")
        for entry in services.app.history(None, _uuid(instance_id)):
            fields = msgspec.json.encode(entry.fields).decode()
            table.add_row(
                str(entry.position or ""),
                str(entry.version),
                entry.timestamp.isoformat(timespec="milliseconds"),
                entry.type,
                fields,
            )
        Console().print(table)
    finally:
        services.close()


@click.command()
@click.argument("instance_id")
@click.option("--version", "version", type=int, help="State after this version.")
@click.option("--at", "at", help="State at this moment (ISO 8601 with a time zone).")
def replay(instance_id: str, version: int | None, at: str | None) -> None:
    """Print an instance's state as it was at a version or a moment."""
    if (version is None) == (at is None):
        raise click.UsageError("give exactly one of --version or --at")
    moment = None
    if at is not None:
        try:
            moment = datetime.fromisoformat(at)
        except ValueError:
            raise click.BadParameter(
                f"{at!r} is not an ISO 8601 timestamp", param_hint="--at"
            ) from None
    services = _services()
    try:
        state = services.app.get_instance(None, _uuid(instance_id), version=version, at=moment)
        click.echo(msgspec.json.format(msgspec.json.encode(state.masked())).decode())
    finally:
        services.close()


@click.command()
@click.argument("names", nargs=-1)
def project(names: tuple[str, ...]) -> None:
    """Run projections (all, or the named ones) as this process, until interrupted."""
    unknown = [n for n in names if n not in READ_MODELS]
    if unknown:
        raise click.UsageError(
            f"unknown view(s) {', '.join(unknown)}; known: {', '.join(READ_MODELS)}"
        )
    run_until_stopped(
        f"projections {', '.join(names or READ_MODELS)}",
        lambda services: services.start_projections(names or None),
    )


@click.command()
@click.argument("name")
def rebuild(name: str) -> None:
    """Rebuild a view from the store; readers see the old view until the swap."""
    if name not in READ_MODELS:
        raise click.UsageError(f"unknown view {name!r}; known: {', '.join(READ_MODELS)}")
    services = _services()
    try:
        with Progress(console=Console(stderr=True)) as bar:
            task = bar.add_task(f"rebuilding {name}", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            position = rebuild_view(services.app, services.datastore, name, progress)
        click.echo(f"rebuilt {name} up to position {position}", err=True)
    finally:
        services.close()
