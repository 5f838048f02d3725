@echo off
rem Serve LlamaGate with an API key required on /v1 (clients send "Authorization: Bearer <key>").
rem   run-with-auth.cmd                 use API_KEY from the environment or .env, or make a random one
rem   run-with-auth.cmd my-secret-key   use this key
setlocal
cd /d "%~dp0..\.."
if not "%~1"=="" set "API_KEY=%~1"
if not "%API_KEY%"=="" goto announce
findstr /r /b /c:"API_KEY=." .env >nul 2>&1 && goto run
set "PY=py -3"
if exist ".venv\Scripts\python.exe" set "PY=.venv\Scripts\python.exe"
for /f "delims=" %%k in ('%PY% -c "import secrets; print(secrets.token_urlsafe(32))"') do set "API_KEY=%%k"
if "%API_KEY%"=="" (
    echo Could not make a key: pass one, e.g.  run-with-auth.cmd my-secret-key
    exit /b 2
)
:announce
echo API key for this run: %API_KEY%
:run
call "%~dp0run.cmd"
exit /b %ERRORLEVEL%
