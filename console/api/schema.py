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
