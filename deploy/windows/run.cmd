@echo off
rem Serve LlamaGate with waitress on http://localhost:11435 (Windows, no gunicorn).
rem Settings come from .env, llamagate.yaml and the environment, as everywhere (see .env.example).
rem The first run creates .venv and installs the requirements. Ctrl+C stops after open requests finish.
setlocal
cd /d "%~dp0..\.."
if not exist ".venv\Scripts\python.exe" (
    echo Creating .venv and installing the requirements...
    py -3 -m venv .venv || python -m venv .venv || exit /b 1
    ".venv\Scripts\python.exe" -m pip install --disable-pip-version-check -r requirements.txt || exit /b 1
)
".venv\Scripts\python.exe" wsgi.py
exit /b %ERRORLEVEL%
