from django.urls import path

from . import views

urlpatterns = [
    path("public", views.public),
    path("token", views.token_view),
    path("contacts", views.contacts),
    path("any", views.any_scope),
    path("groups", views.groups),
    path("tenant", views.tenant),
    path("issuer", views.issuer_only),
    path("bound", views.bound),
    path("async", views.async_contacts),
    path("cbv", views.ContactsView.as_view()),
    path("me", views.me),
    path("strong", views.strong),
    path("recent", views.recent),
    path("drf/contacts", views.DrfContacts.as_view()),
    path("drf/any", views.DrfAny.as_view()),
    path("drf/strong", views.DrfStrong.as_view()),
    path("drf/recent", views.DrfRecent.as_view()),
    path("drf/methods", views.DrfByMethod.as_view()),
    path("drf/open", views.DrfOpen.as_view()),
    path("drf/authenticated", views.DrfAuthenticated.as_view()),
    path("drf/unconfigured", views.DrfUnconfigured.as_view()),
    path("drf/plain", views.DrfPlain.as_view()),
]
