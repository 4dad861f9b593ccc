from channels.security.websocket import WebsocketDenier
from django.urls import path, re_path

from .consumers import StatusConsumer

# Any other path is refused on the handshake (403) instead of failing the router with a traceback.
websocket_urlpatterns = [path("ws", StatusConsumer.as_asgi()), path("ws/", StatusConsumer.as_asgi()),
                         re_path(r"", WebsocketDenier.as_asgi())]
