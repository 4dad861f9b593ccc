from django.urls import path

from .consumers import StatusConsumer

websocket_urlpatterns = [path("ws", StatusConsumer.as_asgi()), path("ws/", StatusConsumer.as_asgi())]
