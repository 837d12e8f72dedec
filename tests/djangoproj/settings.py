"""Settings of the test project: no database, the oidc_guard app and
middleware, DRF.  The issuer is set per test (override_settings)."""

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "api.test", "localhost", "127.0.0.1"]
ROOT_URLCONF = "djangoproj.urls"
USE_TZ = True
DATABASES = {}
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "drf_spectacular",
    "oidc_guard.django",
]
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "oidc_guard.django.BearerMiddleware",
]
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
# Placeholders: every test overrides them with its LocalIssuer's values.
OIDC_GUARD_ISSUER = "http://127.0.0.1:9/unused"
OIDC_GUARD_AUDIENCE = "api://contacts"
OIDC_GUARD_REALM = "contacts-api"
LOGGING_CONFIG = None
