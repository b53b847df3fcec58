"""The OpenAPI description: valid, warning-free, served, and covering every endpoint."""

from __future__ import annotations

from pathlib import Path

import yaml
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient


def api_routes() -> set[str]:
    """Every route under /api/v1/ except the schema and its docs page, as OpenAPI paths."""
    routes: set[str] = set()

    def walk(patterns: list[URLPattern | URLResolver], prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif route.startswith("api/v1/") and route not in ("api/v1/schema", "api/v1/docs"):
                routes.add("/" + route.replace("<int:", "{").replace(">", "}"))

    walk(get_resolver().url_patterns, "")
    return routes


def test_the_schema_is_valid_and_generates_without_warnings(tmp_path: Path) -> None:
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    assert set(schema["paths"]) == api_routes()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_the_schema_is_served_to_anyone_and_describes_the_buyers_records() -> None:
    response = APIClient().get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    records = schema["paths"]["/api/v1/datasets/{dataset_id}/records/"]["get"]
    page = records["responses"]["200"]["content"]["application/json"]["schema"]
    assert page == {"$ref": "#/components/schemas/RecordPage"}
    record = schema["components"]["schemas"]["RecordOutput"]["properties"]
    assert {"label", "confidence", "agreement", "provenance"} <= set(record)
    export = schema["paths"]["/api/v1/datasets/{dataset_id}/export"]["get"]
    assert set(export["responses"]["200"]["content"]) == {"application/x-ndjson", "text/csv"}


def test_the_docs_page_renders_the_schema_with_a_bundled_redoc() -> None:
    page = APIClient().get("/api/v1/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/api/v1/schema" in html
    bundle = "drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"
    assert f"/static/{bundle}" in html
    assert finders.find(bundle) is not None  # served from the app, not a CDN


def test_every_operation_documents_the_errors_any_endpoint_of_its_kind_returns() -> None:
    schema = (
        APIClient().get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    )
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert "429" in codes, (method, path)  # every endpoint is rate-limited
            if {} not in operation.get("security", [{}]):
                assert {"401", "403"} <= codes, (method, path)
            if "{" in path:
                assert "404" in codes, (method, path)
            for code, response in operation["responses"].items():
                if code in ("401", "403", "429") and "content" in response:
                    [body] = response["content"].values()
                    assert body["schema"] == {"$ref": "#/components/schemas/Error"}, (path, code)


def test_the_buyers_enums_are_in_the_schema() -> None:
    schema = (
        APIClient().get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    )
    components = schema["components"]["schemas"]
    record = components["RecordOutput"]["properties"]
    assert components[record["decided_by"]["$ref"].rsplit("/", 1)[1]]["enum"] == [
        "crowd",
        "moderator",
    ]
    export = components["ExportOutput"]["properties"]
    formats = components[export["format"]["$ref"].rsplit("/", 1)[1]]["enum"]
    assert formats == ["jsonl", "csv", "coco", "yolo", "label_studio", "parquet"]
    statuses = components[export["status"]["$ref"].rsplit("/", 1)[1]]["enum"]
    assert statuses == ["queued", "running", "done", "failed", "expired"]
    dataset = components["DatasetOutput"]["properties"]
    assert "$ref" in dataset["task"] and "$ref" in dataset["data_kind"]
