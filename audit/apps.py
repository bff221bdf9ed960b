from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Signed event log"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (login, logout and failed-login events)
