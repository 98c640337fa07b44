"""URLs of the control plane's web side: the audit pages only."""

from django.urls import path

from controlplane import views

urlpatterns = [
    path("", views.request_list, name="audit-requests"),
    path("requests/<int:request_id>/", views.request_detail, name="audit-request"),
    path("events/", views.event_list, name="audit-events"),
]
