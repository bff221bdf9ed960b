"""ASGI entry point: HTTP through Django, websockets through Channels (SPEC §8).

Websocket routes are wrapped in ``AllowedHostsOriginValidator`` (foreign origins are
refused) and ``AuthMiddlewareStack`` (the console session identifies the operator).
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

# Django's handler, except that long-polls hold no thread while they wait (console/handlers.py).
from console.handlers import freeze_startup_objects, get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from console.websockets import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)

# Last: what start-up loaded stays for the life of the process (console/handlers.py).
freeze_startup_objects()
