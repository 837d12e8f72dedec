"""Shared pieces of the benchmark sections: paths, the token's constants,
the issuer (:mod:`benchkit.issuer`) and the timing helpers
(:mod:`benchkit.timing`)."""

from __future__ import annotations

import os

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # bench/
ROOT = os.path.dirname(HERE)  # the repository
RUNNER = os.path.join(HERE, "run.py")  # child processes run this file again

ALGS = ("RS256", "ES256", "EdDSA")
AUDIENCE = "contacts"  # the API's audience; the token also carries <issuer>/resources
SCOPE = "contacts"
