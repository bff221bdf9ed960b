"""API authentication: operator tokens, console sessions and agent keys (SPEC §9).

Agent keys are checked against the database on every request, together with the agent's
status: there is no cache that could outlive a revocation (SPEC §1).
"""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework import authentication, exceptions

from . import credentials
from .models import Agent, ApiKey, OperatorToken


class AgentAuthFailed(exceptions.AuthenticationFailed):
    """401 with a specific code (``agent_revoked``, ``key_revoked``, ``invalid_key``)."""

    def __init__(self, code: str, message: str):
        super().__init__(detail=message, code=code)
        self.warden_code = code


@dataclass
class AgentPrincipal:
    """``request.user`` for agent-key requests."""

    agent: Agent
    api_key: ApiKey
    is_authenticated: bool = True
    is_agent: bool = True
    is_active: bool = True
    is_superuser: bool = False

    def get_username(self) -> str:
        return f"agent:{self.agent.id}"

    @property
    def pk(self):
        return None


def _authorization(request) -> tuple[str, str] | None:
    header = authentication.get_authorization_header(request)
    if not header:
        return None
    try:
        scheme, _, value = header.decode("latin-1").partition(" ")
    except UnicodeDecodeError:
        return None
    return scheme.strip().lower(), value.strip()


class AgentKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer wdn_live_…``"""

    def authenticate(self, request):
        parsed_header = _authorization(request)
        if parsed_header is None or parsed_header[0] != "bearer":
            return None
        parsed = credentials.parse(credentials.AGENT_KEY, parsed_header[1])
        if parsed is None:
            raise AgentAuthFailed("invalid_key", "The API key is malformed.")
        key = ApiKey.objects.select_related("agent").filter(prefix=parsed.prefix).first()
        if key is None or not credentials.matches(parsed.full, key.key_hash):
            raise AgentAuthFailed("invalid_key", "The API key is not valid.")
        if key.agent.status == Agent.Status.REVOKED:
            raise AgentAuthFailed("agent_revoked", "This agent has been revoked.")
        if key.revoked_at is not None:
            raise AgentAuthFailed("key_revoked", "This API key has been revoked.")
        return AgentPrincipal(agent=key.agent, api_key=key), key

    def authenticate_header(self, request):
        return 'Bearer realm="warden-agents"'


class OperatorTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Token wdn_op_…``"""

    def authenticate(self, request):
        parsed_header = _authorization(request)
        if parsed_header is None or parsed_header[0] != "token":
            return None
        parsed = credentials.parse(credentials.OPERATOR_TOKEN, parsed_header[1])
        if parsed is None:
            raise exceptions.AuthenticationFailed("The operator token is malformed.")
        token = (
            OperatorToken.objects.select_related("user")
            .filter(prefix=parsed.prefix, revoked_at__isnull=True)
            .first()
        )
        if token is None or not credentials.matches(parsed.full, token.key_hash):
            raise exceptions.AuthenticationFailed("The operator token is not valid.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("This operator account is disabled.")
        return token.user, token

    def authenticate_header(self, request):
        return 'Token realm="warden-operators"'


class ConsoleSessionAuthentication(authentication.SessionAuthentication):
    """The logged-in console session (CSRF enforced, as DRF does)."""
