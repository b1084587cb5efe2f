"""Schemathesis against the published OpenAPI, over real HTTP: no input makes a 5xx.

Bounded: about 220 requests in all (the schema's examples, then ``MAX_EXAMPLES`` generated
per operation; the coverage phase alone would be thousands), sent as a supervisor so that
most of them get past authorisation into the engine. Responses must also match their
documented status codes, content types and schemas.
"""
from __future__ import annotations

from typing import Any, Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                 status_code_conformance)

from tests.api_support import COMPLAINT, issue_tokens

from engine.api import create_app
from engine.api.server import BackgroundServer

MAX_EXAMPLES = 15
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def published(engine: Any) -> Iterator[Any]:  # type: ignore[misc]
    app = create_app(engine, max_body_bytes=64 * 1024)
    with BackgroundServer(app) as url:
        token = issue_tokens(engine, ("li_qiang", "liu_fang"))
        engine.start("complaint", "liu_fang", COMPLAINT)  # instance 1 exists, so some ids hit
        config = schemathesis.Config()
        project = config.projects.default
        project.phases.update(phases=["examples", "fuzzing"])  # the coverage phase alone is thousands of calls
        project.update(headers={"Authorization": f"Bearer {token['li_qiang']}"})
        yield schemathesis.openapi.from_url(f"{url}/openapi.json", config=config)


schema = schemathesis.pytest.from_fixture("published")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_input_makes_a_server_error(case: Any) -> None:
    case.call_and_validate(checks=CHECKS)

