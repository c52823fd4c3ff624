"""drf-spectacular hooks shared by every API view."""


def document_unsupported_media_type(result, generator, request, public):
    """Every operation that reads a body answers 415 to a body in an unparsed type (or with
    no Content-Type at all); say so once here rather than on each view."""
    error = {"$ref": "#/components/schemas/ErrorOutput"}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "requestBody" not in operation:
                continue
            operation.setdefault("responses", {}).setdefault(
                "415",
                {
                    "content": {"application/json": {"schema": error}},
                    "description": "Send the body as JSON (or a form, where listed).",
                },
            )
    return result
