"""
Author:  Cerebro team
Date:    2026-11-24
Subject: An OpenAPI 3 document generated from every endpoint's declared inputs.
Tagline: The Java team generates its client; nobody writes it by hand.
"""

import cerebro

_ERROR = {"$ref": "#/components/schemas/Error"}


def _error_response(description):
    """An OpenAPI response object carrying the error body."""
    return {"description": description,
            "content": {"application/json": {"schema": _ERROR}}}


def _body(ep):
    """The request body media object, with the declared example when there is one."""
    media = {"schema": ep.schema.json_schema()}
    if ep.example is not None:
        media["example"] = ep.example
    return media


def document(registry, settings):
    """Build the OpenAPI document for every endpoint in ``registry``."""
    paths = {}
    for ep in registry.endpoints():
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
            },
        },
    }
