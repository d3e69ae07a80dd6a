"""The OpenAPI 3.1 schema of `facescan serve`, served at `/openapi.json`. Written out rather than
generated: the API is five routes, and its row is the report row (`reports.base.FIELDS`; a test
checks that the two agree).
"""

from __future__ import annotations

from typing import Any

from scanner.version import __version__

NULLABLE_STRING = {"type": ["string", "null"]}
ROW = {
    "type": "object",
    "description": "One image: the JSONL report row of the same file",
    "properties": {
        "path": {"type": "string", "description": "the file name the client sent"},
        "status": {"enum": ["ok", "error"]},
        "label": {**NULLABLE_STRING, "description": "the model's label (null on error)"},
        "score": {"type": ["number", "null"], "description": "probability of AI, 0..1"},
        "error": {**NULLABLE_STRING, "description": "why the image could not be scored"},
        "width": {"type": ["integer", "null"]},
        "height": {"type": ["integer", "null"]},
        "format": {**NULLABLE_STRING, "description": "decoded format: JPEG, PNG, ..."},
        "sha256": {**NULLABLE_STRING, "description": "of the uploaded bytes"},
        "evidence": {**NULLABLE_STRING, "description": "provenance evidence, '; '-separated"},
        "reason": {"enum": ["model", "metadata", "provenance", None]},
        "cached": {"type": "boolean"},
        "faces": {
            "type": ["array", "null"],
            "description": "every face found (null: the model scores whole images); score and "
            "label null for a face under --min-face",
            "items": {
                "type": "object",
                "properties": {
                    "box": {
                        "type": "array",
                        "items": {"type": "number"},
                        "description": "x0, y0, x1, y1 in the upright image's pixels",
                    },
                    "detection": {"type": "number"},
                    "score": {"type": ["number", "null"]},
                    "label": NULLABLE_STRING,
                },
            },
        },
        "baseline": {**NULLABLE_STRING, "description": "always null: the service has no baseline"},
        "provenance": {
            "type": ["object", "null"],
            "description": "the C2PA credential (null: none); validation is valid, untrusted, "
            "invalid, unreadable or unverified, summary a short human line",
        },
    },
    "required": ["path", "status"],
}
ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}},
    "required": ["error"],
}


def refusal(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def probe(description: str) -> dict[str, Any]:
    return {"get": {"summary": description, "responses": {"200": {"description": "yes"}}}}


def schema() -> dict[str, Any]:
    binary = {"type": "string", "format": "binary"}
    scan = {
        "summary": "Score images as real or AI-generated",
        "description": (
            "multipart/form-data with one part per image (each with a filename; other fields "
            "are ignored), or one image as the whole body. An unreadable image is its row's "
            "error, never a failed request."
        ),
        "parameters": [
            {
                "name": "name",
                "in": "query",
                "required": False,
                "description": "a raw body's file name (its row's path)",
                "schema": {"type": "string"},
            }
        ],
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "array", "items": binary}},
                    }
                },
                "image/*": {"schema": binary},
                "application/octet-stream": {"schema": binary},
            },
        },
        "responses": {
            "200": {
                "description": "one row per image, in upload order",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "results": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/ScanRow"},
                                }
                            },
                        }
                    }
                },
            },
            "400": refusal("malformed request (bad multipart body, no image)"),
            "401": refusal("missing or wrong bearer token"),
            "413": refusal("body over --max-request-bytes, or more images than --max-files"),
            "415": refusal("media type other than multipart/form-data, image/*, octet-stream"),
            "503": refusal("queue full: retry after the Retry-After header's seconds"),
        },
        "security": [{"bearer": []}, {}],
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "facescan", "version": __version__},
        "paths": {
            "/v1/scan": {"post": scan},
            "/healthz": probe("The process is alive"),
            "/readyz": probe("The model is loaded and requests are taken (503 when not)"),
            "/metrics": probe("Prometheus metrics (text format)"),
        },
        "components": {
            "schemas": {"ScanRow": ROW, "Error": ERROR},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
