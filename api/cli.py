"""The `lifeline` command. Each group of subcommands lives in its own module; this one
registers them and turns expected failures into one clear line and a non-zero exit."""

from __future__ import annotations

import sys
from typing import Any

import click

from adapters.settings import SettingsError
from adapters.store import StoreConfigError
from domain.errors import DomainError


class LifelineGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (DomainError, SettingsError, StoreConfigError, TimeoutError) as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(1)


@click.group(cls=LifelineGroup)
def cli() -> None:
    """Lifeline: the event-sourced lifecycle service for hosted instances."""


def _register() -> None:
    # Imported here so `lifeline --help` stays fast and each module stays independent.
    from api.cli_store import history, project, rebuild, replay  # noqa: PLC0415

    for command in (history, replay, project, rebuild):
        cli.add_command(command)
    # Further command modules register below, one line each.
    from api.cli_serve import keys, serve  # noqa: PLC0415

    cli.add_command(serve)
    cli.add_command(keys)
    from api.cli_workers import provision, runtime  # noqa: PLC0415

    cli.add_command(provision)
    cli.add_command(runtime)
    from api.cli_events import events, relay  # noqa: PLC0415

    cli.add_command(relay)
    cli.add_command(events)


def main() -> None:
    _register()
    cli()
