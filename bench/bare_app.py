"""The baseline for the API benchmark: a bare Litestar endpoint that validates a msgspec body
and answers, with nothing behind it. Run as `uvicorn bench.bare_app:app`."""

from __future__ import annotations

import msgspec
from litestar import Litestar, post


class Body(msgspec.Struct):
    action: str


class Answer(msgspec.Struct):
    status: str


@post("/bare/{instance_id:uuid}", status_code=200)
async def bare(data: Body) -> Answer:
    return Answer(status=data.action)


app = Litestar(route_handlers=[bare])
