"""`python -m app`: serve with waitress (Windows, or anywhere without gunicorn)."""

from .launch import build_app
from .launch import serve_with_waitress

serve_with_waitress(build_app())
