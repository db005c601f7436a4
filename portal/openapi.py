"""The OpenAPI 3.0 document of the portal's JSON API (/api/openapi.json): the CKAN-compatible
read API, the data API and /api/me. Schemathesis fuzzes the portal against it in the tests,
so what it says about parameters, status codes and answer shapes is checked on every run."""

from __future__ import annotations

from .catalog.rows import DEFAULT_LIMIT, ROW_CAP

ERROR = {
    "type": "object",
    "required": ["success", "error"],
    "properties": {
        "help": {"type": "string"},
        "success": {"type": "boolean", "enum": [False]},
        "error": {
            "type": "object",
            "required": ["message"],
            "properties": {"__type": {"type": "string"}, "message": {"type": "string"}},
        },
    },
}
DATA_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "message"],
            "properties": {"status": {"type": "integer"}, "message": {"type": "string"}},
        }
    },
}
TEXT = {"type": "string"}
NULLABLE_TEXT = {"type": "string", "nullable": True}

RESOURCE = {
    "type": "object",
    "required": ["id", "package_id", "format", "url"],
    "properties": {
        "id": TEXT,
        "package_id": TEXT,
        "name": TEXT,
        "format": TEXT,
        "url": TEXT,
        "size": {"type": "integer"},
        "hash": TEXT,
        "last_modified": TEXT,
        "restricted": {"type": "boolean"},
    },
}
PACKAGE = {
    "type": "object",
    "required": ["id", "name", "title", "organization", "resources", "license_id"],
    "properties": {
        "id": TEXT,
        "name": TEXT,
        "title": TEXT,
        "notes": TEXT,
        "url": TEXT,
        "state": TEXT,
        "license_id": {"type": "string", "enum": ["DCF-ODL-1.0", "conditional"]},
        "license_title": TEXT,
        "license_url": TEXT,
        "organization": {"type": "object", "properties": {"name": TEXT, "title": TEXT}},
        "groups": {"type": "array", "items": {"type": "object"}},
        "tags": {"type": "array", "items": {"type": "object", "properties": {"name": TEXT}}},
        "extras": {"type": "array", "items": {"type": "object", "properties": {"key": TEXT}}},
        "resources": {"type": "array", "items": RESOURCE},
        "num_resources": {"type": "integer"},
    },
}
ORGANIZATION = {
    "type": "object",
    "required": ["name", "title", "package_count"],
    "properties": {
        "name": TEXT,
        "title": TEXT,
        "package_count": {"type": "integer"},
        "packages": {"type": "array", "items": PACKAGE},
    },
}


def _ok(result: dict) -> dict:
    return {
        "type": "object",
        "required": ["success", "result"],
        "properties": {"help": TEXT, "success": {"type": "boolean", "enum": [True]}, "result": result},
    }


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _param(
    name: str,
    schema: dict,
    description: str,
    *,
    required: bool = False,
    where: str = "query",
    example: object = None,
) -> dict:
    p = {"name": name, "in": where, "required": required, "schema": schema, "description": description}
    if example is not None:
        p["example"] = example
    return p


def _ckan(
    action: str,
    summary: str,
    result: dict,
    params: list[dict],
    *,
    not_found: bool = False,
    validation: bool = False,
) -> dict:
    responses = {
        "200": _json(_ok(result), "CKAN success envelope"),
        "400": _json(ERROR, "A request the portal refuses outright (a NUL character, a malformed body)"),
    }
    if not_found:
        responses["404"] = _json(ERROR, "Not Found Error (also not-open, held and withdrawn datasets)")
    if validation:
        responses["409"] = _json(ERROR, "Validation Error: a parameter of the wrong kind")
    return {
        "get": {
            "operationId": action,
            "summary": summary,
            "tags": ["CKAN action API"],
            "parameters": params,
            "responses": responses,
        }
    }


INT = {"type": "integer", "minimum": 0}
BOOL_TEXT = {"type": "string", "enum": ["true", "false"]}


def document(example_dataset: str = "371502-scj-0001") -> dict:
    prefix = "/api/3/action"
    ckan_paths = {
        f"{prefix}/status_show": _ckan("status_show", "Site and API version", {"type": "object"}, []),
        f"{prefix}/package_list": _ckan(
            "package_list",
            "Names of public datasets",
            {"type": "array", "items": TEXT},
            [_param("limit", INT, "At most this many"), _param("offset", INT, "Skip this many")],
            validation=True,
        ),
        f"{prefix}/package_search": _ckan(
            "package_search",
            "Search public datasets (Solr-like parameters)",
            {
                "type": "object",
                "required": ["count", "results"],
                "properties": {
                    "count": {"type": "integer"},
                    "results": {"type": "array", "items": PACKAGE},
                    "facets": {"type": "object"},
                    "search_facets": {"type": "object"},
                },
            },
            [
                _param("q", TEXT, "Words; Chinese is segmented", example="药品"),
                _param("fq", TEXT, 'Filters: organization:dcf-scjgj res_format:"CSV" groups:交通运输'),
                _param("rows", {"type": "integer", "minimum": 0, "maximum": 1000}, "Page size"),
                _param("start", INT, "Offset"),
                _param(
                    "sort",
                    {
                        "type": "string",
                        "enum": ["score desc", "metadata_modified desc", "name asc", "downloads desc"],
                    },
                    "Order",
                ),
                _param("facet.limit", {"type": "integer"}, "Values per facet"),
            ],
            validation=True,
        ),
        f"{prefix}/package_show": _ckan(
            "package_show",
            "One public dataset",
            PACKAGE,
            [_param("id", TEXT, "Dataset name", required=True, example=example_dataset)],
            not_found=True,
        ),
        f"{prefix}/current_package_list_with_resources": _ckan(
            "current_package_list_with_resources",
            "Recently changed datasets with their resources",
            {"type": "array", "items": PACKAGE},
            [_param("limit", INT, "Page size"), _param("offset", INT, "Offset")],
            validation=True,
        ),
        f"{prefix}/organization_list": _ckan(
            "organization_list",
            "Departments that publish data",
            {"type": "array", "items": {"oneOf": [TEXT, ORGANIZATION]}},
            [_param("all_fields", BOOL_TEXT, "Whole records instead of names")],
        ),
        f"{prefix}/organization_show": _ckan(
            "organization_show",
            "One department",
            ORGANIZATION,
            [
                _param("id", TEXT, "Department code", required=True, example="dcf-scjgj"),
                _param("include_datasets", BOOL_TEXT, "With its datasets"),
            ],
            not_found=True,
        ),
        f"{prefix}/group_list": _ckan(
            "group_list",
            "Domains (数据领域)",
            {"type": "array", "items": {"oneOf": [TEXT, {"type": "object"}]}},
            [_param("all_fields", BOOL_TEXT, "Whole records instead of names")],
        ),
        f"{prefix}/tag_list": _ckan(
            "tag_list",
            "Tags of public datasets",
            {"type": "array", "items": TEXT},
            [_param("query", TEXT, "Only tags containing this")],
        ),
        f"{prefix}/resource_show": _ckan(
            "resource_show",
            "One resource (table and format)",
            RESOURCE,
            [_param("id", TEXT, "Resource id, e.g. 12-csv", required=True)],
            not_found=True,
        ),
    }
    comparison = {"type": "object", "additionalProperties": {"type": "string"}}
    data_params = [
        _param("name", TEXT, "Dataset name", required=True, where="path", example=example_dataset),
        _param("table", TEXT, "Table id (see /fields); the first table by default"),
        _param("fields", TEXT, "Columns to return, comma separated"),
        *[
            {
                **_param(
                    op,
                    comparison,
                    f"{label}: {op}[column]=value" + (" (repeat for any of several)" if op == "eq" else ""),
                ),
                "style": "deepObject",
                "explode": True,
            }
            for op, label in (
                ("eq", "Equal"),
                ("gt", "Greater than"),
                ("gte", "At least"),
                ("lt", "Less than"),
                ("lte", "At most"),
            )
        ],
        _param("q", TEXT, "Words that must each appear in some text column"),
        _param("sort", TEXT, "Columns, comma separated; -column for descending"),
        _param(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": ROW_CAP, "default": DEFAULT_LIMIT},
            f"Rows per call (at most {ROW_CAP})",
        ),
        _param("offset", {"type": "integer", "minimum": 0, "default": 0}, "Rows to skip"),
        _param("count", BOOL_TEXT, "Also count every matching row (total, X-Total-Count)"),
        _param("format", {"type": "string", "enum": ["json", "csv"], "default": "json"}, "Answer format"),
    ]
    field_list = {
        "type": "array",
        "items": {"type": "object", "required": ["name", "type"], "properties": {"name": TEXT, "type": TEXT}},
    }
    rows_schema = {
        "type": "object",
        "required": ["dataset", "source", "acquired", "attribution", "fields", "records", "more"],
        "properties": {
            "dataset": TEXT,
            "title": TEXT,
            "table": {"type": "integer"},
            "source": TEXT,
            "acquired": TEXT,
            "attribution": TEXT,
            "fields": field_list,
            "records": {"type": "array", "items": {"type": "object"}},
            "offset": {"type": "integer"},
            "limit": {"type": "integer"},
            "more": {"type": "boolean"},
            "next": NULLABLE_TEXT,
            "total": {"type": "integer", "nullable": True},
            "licence": {
                "type": "object",
                "nullable": True,
                "properties": {"number": TEXT, "valid_until": TEXT, "url": TEXT},
            },
        },
    }
    refusals = {
        "401": _json(DATA_ERROR, "Conditional data without a token"),
        "403": _json(DATA_ERROR, "No grant in force for this dataset"),
        "404": _json(DATA_ERROR, "No such public dataset or table"),
        "400": _json(DATA_ERROR, "A parameter the API cannot answer, or a NUL character"),
        "429": {"description": "Too many calls; wait and retry"},
    }
    data_paths = {
        "/api/data/{name}": {
            "get": {
                "operationId": "data_rows",
                "tags": ["Data API"],
                "summary": "Rows of a table",
                "description": "Unconditional data for anyone; conditional data within a grant's fields and rows for "
                "its holder's token. Answered from Parquet with the filters pushed down.",
                "security": [{}, {"token": []}],
                "parameters": data_params,
                "responses": {
                    "200": {
                        "description": "A page of rows",
                        "content": {
                            "application/json": {"schema": rows_schema},
                            "text/csv": {"schema": TEXT},
                        },
                    },
                    **refusals,
                },
            }
        },
        "/api/data/{name}/fields": {
            "get": {
                "operationId": "data_fields",
                "tags": ["Data API"],
                "summary": "Tables and the columns you may query",
                "security": [{}, {"token": []}],
                "parameters": [data_params[0]],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["dataset", "tables"],
                            "properties": {
                                "dataset": TEXT,
                                "open_class": TEXT,
                                "licence": NULLABLE_TEXT,
                                "tables": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {"table": {"type": "integer"}, "fields": field_list},
                                    },
                                },
                            },
                        },
                        "Tables",
                    ),
                    **refusals,
                },
            }
        },
        "/api/me": {
            "get": {
                "operationId": "me",
                "tags": ["Accounts"],
                "summary": "Whose token this is",
                "security": [{"token": []}],
                "responses": {
                    "200": _json(_ok({"type": "object", "required": ["id", "email"]}), "The token's owner"),
                    "400": _json(ERROR, "A request the portal refuses outright (a NUL character)"),
                    "401": _json(ERROR, "No token, or an invalid, expired or revoked one"),
                },
            }
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "东昌府区公共数据开放平台 API / Dongchangfu open-data portal API",
            "version": "1",
            "description": "CKAN-compatible read API, data API and account check. Every data answer "
            "states its source department and acquisition date (X-Attribution, attribution).",
        },
        "servers": [{"url": "/"}],
        "paths": {**ckan_paths, **data_paths},
        "components": {
            "securitySchemes": {
                "token": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token from your account page (dcf_...)",
                }
            }
        },
    }
