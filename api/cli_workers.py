"""Running the followers of the store as processes of their own: projections, provisioner and
relay each run until SIGTERM or Ctrl-C, reporting their lag on standard error."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

import click

from adapters.reference_runtime import serve as serve_runtime
from adapters.services import Services
from adapters.settings import get_settings

LAG_REPORT_SECONDS = 10.0


def run_until_stopped(label: str, start: Callable[[Services], object]) -> None:
    """Opens the services, starts what `start` starts, and waits for a signal to stop."""
    services = Services(get_settings())
    done = threading.Event()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    start(services)
    click.echo(f"running {label}; stop with Ctrl-C or SIGTERM", err=True)
    try:
        while not done.wait(LAG_REPORT_SECONDS):
            lags = ", ".join(f"{name} {lag}" for name, lag in services.lags().items())
            click.echo(f"lag behind the store: {lags}", err=True)
    finally:
        services.close()


@click.command()
def provision() -> None:
    """Run the provisioner as this process: drive the runtime provider from the store."""
    run_until_stopped("the provisioner", Services.start_provisioner)


@click.command()
@click.option("--port", type=int, required=True, help="loopback port to serve on")
@click.option("--instance", default="local", help="the instance this runtime serves")
@click.option("--state-dir", default=None, help="keep config and conversations here")
@click.option("--fail-start", is_flag=True, help="exit at once, as a broken runtime would")
def runtime(port: int, instance: str, state_dir: str | None, fail_start: bool) -> None:
    """Serve the reference runtime (the runtime contract) for one instance."""
    serve_runtime(port, instance, state_dir, fail_start=fail_start)
