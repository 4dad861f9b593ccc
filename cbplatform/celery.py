import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cbplatform.settings.local")

app = Celery("cbplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
