"""Superset's configuration for `make bi` and the browser tests (SUPERSET_CONFIG_PATH points here).

Everything that differs per machine or is secret comes from the environment; the metadata
database and the session key live in B2P_SUPERSET_HOME (default ./.bi/, outside git).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

# sqlglot registers a dialect when its class statement runs, before the rest of its module: two
# requests that first parse Athena SQL at once (a dashboard's charts, in a fresh gunicorn worker)
# can get a parser whose module is half-loaded ("name '_TrinoParser' is not defined", sqlglot
# 28.10). Loading the dialect here, once, before any request, closes that window.
import sqlglot.dialects.athena  # noqa: F401

HOME = Path(os.environ.get("B2P_SUPERSET_HOME", ".bi")).resolve()
HOME.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """B2P_SUPERSET_SECRET_KEY, or a random key made once and kept in HOME (never in git)."""
    if os.environ.get("B2P_SUPERSET_SECRET_KEY"):
        return os.environ["B2P_SUPERSET_SECRET_KEY"]
    path = HOME / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
SQLALCHEMY_DATABASE_URI = os.environ.get(
    "B2P_SUPERSET_METADATA_URI", f"sqlite:///{HOME / 'superset.db'}?check_same_thread=false"
)
DATA_DIR = str(HOME)

FEATURE_FLAGS = {
    "DASHBOARD_NATIVE_FILTERS": True,
    "DASHBOARD_CROSS_FILTERS": True,
    "DRILL_BY": True,
    "DRILL_TO_DETAIL": True,
    "EMBEDDED_SUPERSET": False,
}
# Nothing leaves the machine: no thumbnails or reports workers, and a content security policy
# that lets the browser load only from Superset itself. (The PyPI build's login page embeds a
# usage-analytics pixel from scarf.sh, which Superset's default policy allows; this one does
# not, so the browser never requests it.)
SCARF_ANALYTICS = False
THUMBNAILS = False
TALISMAN_ENABLED = True
TALISMAN_CONFIG = {
    "content_security_policy": {
        "base-uri": ["'self'"],
        "default-src": ["'self'"],
        "img-src": ["'self'", "blob:", "data:"],
        "worker-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "object-src": "'none'",
        "style-src": ["'self'", "'unsafe-inline'"],
        "font-src": ["'self'", "data:"],
        "script-src": ["'self'", "'strict-dynamic'"],
    },
    "content_security_policy_nonce_in": ["script-src"],
    "force_https": False,
    "session_cookie_secure": False,
}
# A local, single-user tool bound to 127.0.0.1: the in-memory rate limiter would only warn.
RATELIMIT_ENABLED = False
AUTH_RATE_LIMITED = False
WTF_CSRF_ENABLED = True
# The API answers the browser tests' login with a JWT; a dashboard's charts ask for their data
# through /api/v1/chart/data.
SUPERSET_WEBSERVER_TIMEOUT = 120
ROW_LIMIT = 50_000
