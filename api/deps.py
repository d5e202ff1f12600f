"""What handlers are given: the composition root, the caller's scope from the API key, and
small request helpers (If-Match, cursors, reading your own write)."""

from __future__ import annotations

import base64
import binascii
import contextlib
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException

from adapters.api_keys import ApiKeyStore
from adapters.services import Services
from domain.values import CommandResult, Scope
from projections.instances import InstancesView

# How long a command's answer may wait for the views to show it (read your own write).
SETTLE_TIMEOUT = 2.0


def instances_view(services: Services) -> InstancesView:
    return services.view("instances", InstancesView)  # type: ignore[type-abstract]


def provide_services(state: State) -> Services:
    services: Services = state.services
    return services


def key_of(request: Request[Any, Any, Any]) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def provide_scope(request: Request[Any, Any, Any], state: State) -> Scope:
    key = key_of(request)
    if key is None:
        raise NotAuthorizedException("send an API key in X-API-Key or Authorization: Bearer")
    keys: ApiKeyStore = state.api_keys
    # A cache hit costs no query; a miss is one indexed look-up.
    record = keys.lookup(key)
    if record is None:
        raise NotAuthorizedException("unknown or revoked API key")
    return record.scope


def require_admin(scope: Scope) -> None:
    if not scope.is_admin:
        raise PermissionDeniedException("this action needs an admin key")


def expected_version(request: Request[Any, Any, Any]) -> int | None:
    """The version an `If-Match` header pins, if any."""
    header = request.headers.get("if-match")
    if header is None or header.strip() == "*":
        return None
    tag = header.strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise HTTPException(
            status_code=400,
            detail=f"If-Match must be an ETag from this API, like '\"3\"', not {header!r}",
        )
    return int(tag)


def etag(version: int) -> str:
    return f'"{version}"'


def encode_cursor(after: int | None) -> str | None:
    if after is None:
        return None
    return base64.urlsafe_b64encode(f"p{after}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if not text.startswith("p") or not text[1:].isdigit():
        raise HTTPException(status_code=400, detail="cursor is not one this API gave out")
    return int(text[1:])


def settle(services: Services, result: CommandResult, *views: str) -> None:
    """Waits until the views show this command, so a list right after it includes it."""
    if result.position is None:
        return
    # On timeout the write is stored and the view merely late: answering beats failing.
    with contextlib.suppress(TimeoutError):
        services.wait_for(result.position, views or ("instances",), timeout=SETTLE_TIMEOUT)
