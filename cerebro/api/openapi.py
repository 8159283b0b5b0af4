"""
Author:  Cerebro team
Date:    2026-11-24
Subject: An OpenAPI 3 document generated from every endpoint's declared inputs.
Tagline: The Java team generates its client; nobody writes it by hand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import cerebro

if TYPE_CHECKING:
    from cerebro.endpoint import Endpoint
    from cerebro.registry import Registry
    from cerebro.settings import Settings

_JSON = dict[str, object]  # one JSON object of the document

_ERROR = {"$ref": "#/components/schemas/Error"}


def _error_response(description: str) -> _JSON:
    """An OpenAPI response object carrying the error body."""
    return {"description": description,
            "content": {"application/json": {"schema": _ERROR}}}


_CALLBACK_URL = {
    "type": "string", "format": "uri",
    "description": "Where the worker POSTs the result instead of the configured main-app URL; "
                   "its host (with its port and path prefix, when the entry names them) must be "
                   "on CEREBRO_CALLBACK_ALLOWED_HOSTS, and its path free of dot segments and "
                   "encoded slashes or control characters (else 400).",
}


def _body(ep: Endpoint) -> _JSON:
    """The request body media object, with the declared example when there is one.

    An async function also takes the transport-level ``callback_url``.
    """
    schema: dict[str, Any] = ep.schema.json_schema()
    if ep.external:
        schema = dict(schema, properties=dict(schema.get("properties", {}),
                                              callback_url=_CALLBACK_URL))
    media: _JSON = {"schema": schema}
    if ep.example is not None:
        media["example"] = ep.example
    return media


def document(registry: Registry, settings: Settings) -> _JSON:
    """Build the OpenAPI document for every endpoint in ``registry``."""
    paths: _JSON = {}
    for ep in registry.endpoints():
        ok: dict[str, _JSON]
        ok = ({"202": {"description": "Accepted: queued for a worker; the result is "
                                      "delivered by callback or GET /v1/tasks/{id}",
                       "content": {"application/json": {"schema": {
                           "$ref": "#/components/schemas/Accepted"}}}}}
              if ep.external else
              {"200": {"description": "The function's result",
                       "content": {"application/json": {"schema": {}}}}})
        responses = dict(ok)
        responses.update({
            "400": _error_response("Malformed JSON, wrong type, missing or unexpected field"),
            "401": _error_response("Missing or wrong API key (when keys are configured)"),
            "404": _error_response("Unknown module or function"),
            "413": _error_response("Body over the size limit"),
            "415": _error_response("The body is not sent as application/json"),
            "429": _error_response("Too many wrong API keys from this address; see "
                                   "Retry-After"),
            "500": _error_response("A bug; the body carries an error id"),
            "503": _error_response("Model not ready, or a dependency unavailable"),
        })
        paths[f"/v1/{ep.module}/{ep.name}"] = {"post": {
            "operationId": f"{ep.module}_{ep.name}",
            "tags": [ep.module],
            "summary": ep.summary,
            "description": ep.description,
            "requestBody": {"required": True, "content": {"application/json": _body(ep)}},
            "responses": responses,
            "security": [{"apiKey": []}] if settings.api_keys else [],
        }}
    paths.update(_platform_paths(settings, any(ep.external for ep in registry.endpoints())))
    return {
        "openapi": "3.0.3",
        "info": {"title": "Cerebro", "version": cerebro.__version__,
                 "description": "Machine-learning endpoints served by Cerebro."},
        "paths": paths,
        "components": {
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["type", "message"],
                    "properties": {"type": {"type": "string"}, "message": {"type": "string"},
                                   "field": {"type": "string", "nullable": True},
                                   "error_id": {"type": "string"}}}}},
                "Accepted": {"type": "object", "properties": {
                    "task_id": {"type": "string"}, "status": {"type": "string"},
                    "status_url": {"type": "string"}}},
                "TaskStatus": {"type": "object", "required": ["task_id", "status"],
                               "properties": {
                    "task_id": {"type": "string"},
                    "status": {"type": "string",
                               "enum": ["queued", "running", "succeeded", "failed"]},
                    "module": {"type": "string", "nullable": True},
                    "function": {"type": "string", "nullable": True},
                    "result": {"nullable": True},
                    "error": {"type": "object", "nullable": True},
                    "timings": {"type": "object", "nullable": True},
                    "attempts": {"type": "integer", "nullable": True}}},
            },
        },
    }


def _get(operation_id: str, summary: str, responses: _JSON,
         secured: bool) -> dict[str, _JSON]:
    """A GET operation object."""
    return {"get": {"operationId": operation_id, "tags": ["platform"], "summary": summary,
                    "responses": responses, "security": [{"apiKey": []}] if secured else []}}


def _platform_paths(settings: Settings, has_async: bool) -> dict[str, dict[str, _JSON]]:
    """The platform's own routes: modules, health, readiness, metrics, this document, and task
    status when async."""
    keyed = bool(settings.api_keys)
    json_object = {"application/json": {"schema": {"type": "object"}}}
    denied = {"401": _error_response("Missing or wrong API key"),
              "429": _error_response("Too many wrong API keys from this address")} \
        if keyed else {}
    ready = {"type": "object", "required": ["ready"], "properties": {
        "ready": {"type": "boolean"},
        "why": {"type": "string", "description": "Why not ready (empty when ready)"},
        "modules": {"type": "object", "description": "Per module: status, ready, why, errors, "
                    "versions (only for a key holder when keys are configured)"}}}
    paths = {
        "/v1/modules": _get("list_modules", "Modules, functions, input schemas, model versions",
                            {"200": {"description": "Every module", "content": json_object},
                             **denied}, keyed),
        "/healthz": _get("healthz", "The process is alive (never needs an API key)",
                         {"200": {"description": "Alive", "content": json_object}}, False),
        "/readyz": _get("readyz", "This process takes traffic (start-up load done, no "
                                  "module lost its model); with ?module=, those modules can serve",
                        {"200": {"description": "Ready", "content": {
                            "application/json": {"schema": ready}}},
                         "404": _error_response("A ?module= that is not served here"),
                         **denied,
                         "503": {"description": "Not ready, with why", "content": {
                             "application/json": {"schema": ready}}}}, False),
        "/metrics": _get("metrics", "Prometheus metrics (text format)",
                         {"200": {"description": "Prometheus text exposition format",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}},
                          **denied}, keyed),
        "/openapi.json": _get("openapi", "This document",
                              {"200": {"description": "OpenAPI 3", "content": json_object},
                               **denied}, keyed),
    }
    paths["/v1/modules/{module}/drift"] = _get(
        "module_drift", "Live inputs and predictions against the training profile: PSI, "
                        "Jensen-Shannon distance, missing, out-of-range and unseen shares",
        {"200": {"description": "The drift report, fields by severity", "content": json_object},
         "400": _error_response("A window other than 1h or 24h"),
         **denied,
         "404": _error_response("An unknown module, or a version it does not serve")}, keyed)
    paths["/v1/modules/{module}/drift"]["get"]["parameters"] = [
        {"name": "module", "in": "path", "required": True, "schema": {"type": "string"}},
        {"name": "window", "in": "query", "required": False,
         "schema": {"type": "string", "enum": ["1h", "24h"], "default": "1h"}},
        {"name": "version", "in": "query", "required": False, "schema": {"type": "string"}}]
    paths["/readyz"]["get"]["parameters"] = [{
        "name": "module", "in": "query", "required": False, "explode": True,
        "description": "Ask about these modules only (needs a key when keys are configured)",
        "schema": {"type": "array", "items": {"type": "string"}}}]
    if has_async:
        paths["/v1/tasks/{task_id}"] = _get(
            "task_status", "Status and result of an async call (for clients that poll)",
            {"200": {"description": "queued, running, succeeded or failed", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/TaskStatus"}}}},
             **denied,
             "404": _error_response("Unknown or expired task id"),
             "503": _error_response("The result backend is unreachable")}, keyed)
        paths["/v1/tasks/{task_id}"]["get"]["parameters"] = [{
            "name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}}]
    return paths
