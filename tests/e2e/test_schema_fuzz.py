"""Schemathesis against the served OpenAPI document: whatever a client sends, the API answers
without a 5xx and with a body that matches the schema. Bounded so it fits in `make test`."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests.e2e.conftest import LiveApi
from tests.e2e.helpers import create

# Long polls and live streams stay open by design; fuzzing them would only measure patience.
SLOW_OPERATIONS = ("waitForStatus", "streamTenantEvents", "streamInstanceEvents")


@pytest.fixture(scope="module")
def fuzz_target(api: LiveApi) -> dict[str, Any]:
    client = api.client()
    create(client, name="fuzzed")
    return {"url": api.url, "key": client.headers["X-API-Key"]}


def test_no_request_breaks_the_api(fuzz_target: dict[str, Any]) -> None:
    # One hypothesis run per operation, in one test, so the fixtures (and the server on each
    # store) are shared; schemathesis's own pytest plugin cannot reuse parametrised fixtures.
    schema = schemathesis.openapi.from_url(f"{fuzz_target['url']}/schema/openapi.json")
    headers = {"X-API-Key": fuzz_target["key"]}
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 25, "the schema lost operations"
    for operation in operations:
        if operation.definition.raw.get("operationId") in SLOW_OPERATIONS:
            continue

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: Any) -> None:
            response = case.call(base_url=fuzz_target["url"], headers=headers)
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance]
            )

        check()
