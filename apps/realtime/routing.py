from channels.security.websocket import WebsocketDenier
from django.urls import re_path

from .consumers import SocketConsumer

# Any other path is refused on the handshake (403) instead of failing the router with a traceback.
websocket_urlpatterns = [re_path(r"^(?:ws|graphql|stream)/?$", SocketConsumer.as_asgi()),
                         re_path(r"", WebsocketDenier.as_asgi())]
