from django.urls import path

from . import views

urlpatterns = [
    path("health", views.Health.as_view()),
    path("me", views.Me.as_view()),
    path("contacts/import", views.ImportContacts.as_view()),
    path("contacts", views.ListContacts.as_view()),
    path("contacts/<path:email>", views.DeleteContact.as_view()),
    path("wte/jobs", views.WteJobs.as_view()),
    path("coordinate", views.Coordinate.as_view()),
    path("session/handoff", views.SessionHandoff.as_view()),
]

handler404 = "contacts_django.views.not_found"
