"""Every websocket route of the project, gathered from the apps that own them."""

from approvals.routing import websocket_urlpatterns as approval_routes
from console.routing import websocket_urlpatterns as console_routes

websocket_urlpatterns = [*console_routes, *approval_routes]
