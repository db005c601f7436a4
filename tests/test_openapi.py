"""The OpenAPI document describes the JSON API truthfully: schemathesis generates requests
from it (valid and invalid) and checks every answer's status, content type and shape; the
portal must never answer 500."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from portal.openapi import document

# The document as the portal serves it (test_openapi_document_is_served checks they are the same).
schema = schemathesis.openapi.from_dict(document())


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_to_its_openapi_document(case, portal_data, live_server):
    """Over real HTTP, against a harvested catalog."""
    case.call_and_validate(
        base_url=live_server,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )


def test_openapi_document_is_served_and_lists_the_apis(client):
    doc = client.get("/api/openapi.json").get_json()
    assert doc == document()
    assert doc["openapi"].startswith("3.")
    assert {"/api/3/action/package_search", "/api/data/{name}", "/api/me"} <= set(doc["paths"])
    page = client.get("/api/docs").get_data(as_text=True)
    assert "GET /api/data/{name}" in page and "eq[column]" in page
