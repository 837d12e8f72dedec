#!/usr/bin/env python3
"""``python examples/contacts_django/manage.py oidc_guard_check`` (or
``check``): Django's command line for the example project."""

import os
import sys

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contacts_django.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
