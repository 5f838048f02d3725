"""WSGI entry point (`gunicorn -c gunicorn.conf.py wsgi:app`); `python wsgi.py` serves with waitress."""

from app.launch import build_app

app = build_app()

if __name__ == "__main__":
    from app.launch import serve_with_waitress

    serve_with_waitress(app)
