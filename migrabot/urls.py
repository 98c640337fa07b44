"""URLs of the control plane's web side: the audit site (Django's admin, read-only) and its health."""

from django.urls import path

from audit.admin import site
from audit.views import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("", site.urls),
]
