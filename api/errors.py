"""The one place where errors become HTTP responses. Every body has a `detail` a person can act
on; validation errors list each bad field; nothing leaks a traceback."""

from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import ClientException, HTTPException, ValidationException
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_403_FORBIDDEN,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_412_PRECONDITION_FAILED,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_500_INTERNAL_SERVER_ERROR,
)
from litestar.types import ExceptionHandlersMap

from domain.errors import (
    ConflictError,
    DomainError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    PreconditionFailedError,
)

log = logging.getLogger(__name__)

FAMILY_STATUS: tuple[tuple[type[DomainError], int], ...] = (
    (NotFoundError, HTTP_404_NOT_FOUND),
    (ForbiddenError, HTTP_403_FORBIDDEN),
    (ConflictError, HTTP_409_CONFLICT),
    (PreconditionFailedError, HTTP_412_PRECONDITION_FAILED),
    (InvalidError, HTTP_422_UNPROCESSABLE_ENTITY),
)


def problem(status: int, detail: Any, **extra: Any) -> Response[dict[str, Any]]:
    body = {"status_code": status, "detail": detail, **extra}
    return Response(body, status_code=status, media_type=MediaType.JSON)


def invalid(loc: list[str | int], msg: str, kind: str = "value_error") -> Response[dict[str, Any]]:
    return problem(HTTP_422_UNPROCESSABLE_ENTITY, [{"loc": loc, "msg": msg, "type": kind}])


def domain_error(_request: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, Any]]:
    if isinstance(exc, InvalidError):
        return invalid(["body", exc.field], exc.message)
    status = next((code for family, code in FAMILY_STATUS if isinstance(exc, family)), 400)
    extra: dict[str, Any] = {}
    for attribute in ("current_status", "current_version", "instance_id"):
        value = getattr(exc, attribute, None)
        if value is not None:
            extra[attribute] = str(value) if attribute == "instance_id" else value
    return problem(status, str(exc), **extra)


def validation_error(
    _request: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, Any]]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    if not extra:
        # Litestar reports undecodable bodies without field details: that is malformed JSON.
        return problem(HTTP_400_BAD_REQUEST, f"malformed request body: {exc.detail}")
    detail = []
    for item in extra:
        if not isinstance(item, dict):
            continue
        source = item.get("source") or "body"
        key = item.get("key")
        loc: list[str | int] = [str(source)]
        if key:
            loc += [int(p) if p.isdigit() else p for p in str(key).split(".")]
        message = str(item.get("message", "invalid value"))
        detail.append({"loc": loc, "msg": message, "type": _kind(message)})
    return problem(HTTP_422_UNPROCESSABLE_ENTITY, detail)


def _kind(message: str) -> str:
    lowered = message.lower()
    if "missing" in lowered or "required" in lowered:
        return "missing"
    if lowered.startswith("expected"):
        return "type_error"
    return "value_error"


def http_error(_request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    if type(exc) is ClientException:
        # Litestar raises the bare class only when the body cannot be decoded at all.
        return problem(HTTP_400_BAD_REQUEST, f"malformed request body: {exc.detail}")
    extra = exc.extra if isinstance(exc.extra, dict) else {}
    return problem(exc.status_code, exc.detail, **extra)


def unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(
        HTTP_500_INTERNAL_SERVER_ERROR,
        "internal error; it has been logged with the request path for the operators",
    )


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    DomainError: domain_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    Exception: unexpected,
}
