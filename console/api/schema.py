"""OpenAPI descriptions of Warden's credentials for drf-spectacular."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class AgentKeyScheme(OpenApiAuthenticationExtension):
    target_class = "console.authentication.AgentKeyAuthentication"
    name = "agentKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "Agent API key: `Authorization: Bearer wdn_live_<prefix>_<secret>`",
        }


class OperatorTokenScheme(OpenApiAuthenticationExtension):
    target_class = "console.authentication.OperatorTokenAuthentication"
    name = "operatorToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Operator token: `Authorization: Token wdn_op_<prefix>_<secret>`",
        }


class ConsoleSessionScheme(OpenApiAuthenticationExtension):
    target_class = "console.authentication.ConsoleSessionAuthentication"
    name = "consoleSession"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}


def document_payload_too_large(result, generator, request, public):
    """drf-spectacular postprocessing hook: every operation that takes a body may answer 413.

    Django refuses a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` before any view runs, and
    ``console.api.errors`` answers it with the API's error shape, whichever the operation.
    """
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                operation["responses"].setdefault(
                    "413",
                    {
                        "description": "The body is larger than 256 KiB",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                        },
                    },
                )
    return result
