"""Answers every operation can give, added to the OpenAPI document once instead of on each view."""

ERROR = {"$ref": "#/components/schemas/Error"}
COMMON = {
    "401": "No token, or an unknown or revoked one.",
    "403": "The token's scope, account or source address does not allow this.",
    "429": "Too many requests for this token; retry after the Retry-After seconds.",
}
WITH_BODY = {
    "400": "Invalid input; the body names each field that is wrong.",
    "413": "The request body is too large.",
    "415": "The body is not JSON.",
}


def add_common_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = {
        "type": "object",
        "properties": {"detail": {"type": "string"}},
        "description": "A refusal; invalid input instead names each field, with a list of messages.",
    }
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            extra = dict(COMMON)
            if method in ("post", "put", "patch"):
                extra |= WITH_BODY
            if "{" in path:
                extra["404"] = "No such object for this token."
            if method == "get" and "{" not in path:
                extra["400"] = "A filter's value is invalid; the body names it."
            responses = operation.setdefault("responses", {})
            for code, text in extra.items():
                current = responses.get(code)
                if current is None:
                    responses[code] = {"description": text, "content": {"application/json": {"schema": ERROR}}}
                else:
                    current.setdefault("content", {"application/json": {"schema": ERROR}})
    return result
