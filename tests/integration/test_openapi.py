"""Schemathesis against our own OpenAPI document, on the real server: no 5xx, every answer conforms
to the document (status codes, content types, bodies, headers)."""

from __future__ import annotations

import os

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from schemathesis.checks import positive_data_acceptance

from shared.config import Settings
from tests.integration.conftest import Deployment, LiveServer

pytestmark = [pytest.mark.chain, pytest.mark.slow]
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "150"))


def test_every_operation_conforms(settings: Settings, deployment: Deployment) -> None:
    calls: dict[str, int] = {}
    with LiveServer(settings) as server:
        schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert {op.label for op in operations} >= {
            "POST /api/mint/{tokenAddress}",
            "GET /api/payment/{paymentId}",
            "GET /api/tokens/{tokenAddress}",
            "GET /healthz",
        }
        for operation in operations:
            label = operation.label

            @given(case=operation.as_strategy(), real_token=st.booleans())
            @hypothesis.settings(
                max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
            )
            def check(case: schemathesis.Case, real_token: bool) -> None:
                if real_token and "tokenAddress" in (case.path_parameters or {}):
                    case.path_parameters["tokenAddress"] = (
                        deployment.token.address
                    )  # reach the deep paths too
                calls[label] = calls.get(label, 0) + 1  # noqa: B023 - runs within this iteration
                # A schema-valid payment header can still carry a bad signature, so 'valid data is
                # accepted' cannot hold for this API; every other check (no 5xx, conformance) runs.
                case.call_and_validate(excluded_checks=[positive_data_acceptance])

            check()
    print(f"\nschemathesis: {sum(calls.values())} cases: {calls}")
    assert all(count > 0 for count in calls.values())
