"""The REST API fuzzed from its own OpenAPI document (schemathesis, in-process ASGI, bounded):
valid and invalid bodies, paths and versions. No answer is a 5xx, and every answer has the JSON
body the document declares for its status (errors: ``{"error": "<reason>"}``)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.unit.test_model_manager import TEXTS, exported_tiny_model, publish
from tfrecs_llm.export.warmup import write_warmup_requests
from tfrecs_llm.serving.event_log import EventLog
from tfrecs_llm.serving.limits import RequestLimits
from tfrecs_llm.serving.model_manager import ModelManager
from tfrecs_llm.serving.rest import create_app

MAX_EXAMPLES = 60
"""Per operation (8 operations, positive and negative cases): about a minute in all."""


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    publish(root / "tiny", 1, exported_tiny_model(), lambda d: write_warmup_requests(d, "tiny", TEXTS))
    manager = ModelManager(root / "tiny", "tiny")
    manager.poll_once()
    log = EventLog(root / "events.sqlite")
    limits = RequestLimits(max_body_bytes=64_000, max_batch_size=16, max_exclusions=32, max_history=32)
    app = create_app(manager, log, limits)
    yield schemathesis.openapi.from_asgi("/v1/openapi.json", app)
    log.close()


def _operations(schema) -> list:
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
def test_every_answer_is_declared_json_and_none_is_a_server_error(api_schema, mode) -> None:
    operations = _operations(api_schema)
    assert len(operations) == 8
    statuses: dict[int, int] = {}

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case) -> None:
            response = case.call()
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            case.validate_response(
                response,
                checks=[
                    schemathesis.checks.not_a_server_error,
                    schemathesis.checks.content_type_conformance,
                    schemathesis.checks.response_schema_conformance,
                ],
            )
            if response.status_code >= 400:
                assert set(response.json()) == {"error"} and response.json()["error"].strip()

        fuzz()
    print(f"{mode.value}: {sum(statuses.values())} cases, answers by status {dict(sorted(statuses.items()))}")
    assert not any(code >= 500 for code in statuses)
    if mode == schemathesis.GenerationMode.POSITIVE:
        assert statuses.get(200, 0) >= MAX_EXAMPLES  # the fuzzer reached the model, not just errors
