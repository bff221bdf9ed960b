from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Agent registry and console"

    def ready(self) -> None:
        from .api import schema  # noqa: F401  (OpenAPI descriptions of Warden's credentials)
