from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _default_guardrails(sender, using="default", **kwargs) -> None:
    # Fresh installs (and test databases after a flush) get the documented default
    # guardrails; see console.authorize.services.ensure_default_guardrails.
    from console.authorize.services import ensure_default_guardrails

    ensure_default_guardrails()


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Agent registry and console"

    def ready(self) -> None:
        from .api import schema  # noqa: F401  (OpenAPI descriptions of Warden's credentials)

        post_migrate.connect(
            _default_guardrails, sender=self, dispatch_uid="warden-default-guardrails"
        )
