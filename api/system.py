"""Liveness and readiness, outside /v1 and without a key, for load balancers and operators."""

from __future__ import annotations

from litestar import Response, get
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from adapters.services import Services
from api.schemas import Ready

# A view this far behind the store is reported as not ready.
MAX_READY_LAG = 10_000


@get("/health", operation_id="liveness", tags=["system"], sync_to_thread=False)
def health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@get("/ready", operation_id="readiness", tags=["system"], sync_to_thread=True)
def ready(services: Services) -> Response[Ready]:
    """The store answers, and how far each projection and worker is behind it."""
    try:
        lags = services.lags()
    except Exception as error:  # noqa: BLE001 - any failure to reach the store means "not ready"
        body = Ready(ready=False, store="unreachable", lags={}, detail=str(error)[:300])
        return Response(body, status_code=HTTP_503_SERVICE_UNAVAILABLE)
    behind = {name: lag for name, lag in lags.items() if lag > MAX_READY_LAG}
    body = Ready(
        ready=not behind,
        store="ok",
        lags=lags,
        detail="ready" if not behind else f"behind the store: {', '.join(sorted(behind))}",
    )
    return Response(body, status_code=HTTP_200_OK if not behind else HTTP_503_SERVICE_UNAVAILABLE)
