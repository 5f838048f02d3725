@echo off
rem Install LlamaGate as a Windows service with NSSM (https://nssm.cc), from an elevated prompt:
rem   deploy\windows\install-service.cmd [ServiceName]
rem The service runs "python wsgi.py" (waitress) in the repository folder, so .env and llamagate.yaml
rem there configure it. Stopping the service sends Ctrl+C: open requests get up to SHUTDOWN_TIMEOUT
rem (30 s by default) to finish; NSSM waits 35 s before it ends the process.
setlocal
set "SERVICE=%~1"
if "%SERVICE%"=="" set "SERVICE=LlamaGate"
set "NSSM=nssm"
where nssm >nul 2>&1 || (
    if exist "%~dp0nssm.exe" (set "NSSM=%~dp0nssm.exe") else (
        echo nssm.exe was not found: put it on PATH or next to this script.
        exit /b 1
    )
)
net session >nul 2>&1 || (
    echo Run this from an elevated prompt ^(Run as administrator^).
    exit /b 1
)
cd /d "%~dp0..\.."
set "ROOT=%CD%"
if not exist "%ROOT%\.venv\Scripts\python.exe" (
    py -3 -m venv .venv || exit /b 1
    ".venv\Scripts\python.exe" -m pip install --disable-pip-version-check -r requirements.txt || exit /b 1
)
if not exist "%ROOT%\logs" mkdir "%ROOT%\logs"

"%NSSM%" install "%SERVICE%" "%ROOT%\.venv\Scripts\python.exe" wsgi.py || exit /b 1
"%NSSM%" set "%SERVICE%" AppDirectory "%ROOT%"
"%NSSM%" set "%SERVICE%" DisplayName "LlamaGate"
"%NSSM%" set "%SERVICE%" Description "OpenAI-compatible gateway for Ollama (waitress)"
"%NSSM%" set "%SERVICE%" Start SERVICE_AUTO_START
"%NSSM%" set "%SERVICE%" AppEnvironmentExtra PYTHONUNBUFFERED=1
"%NSSM%" set "%SERVICE%" AppStdout "%ROOT%\logs\llamagate.log"
"%NSSM%" set "%SERVICE%" AppStderr "%ROOT%\logs\llamagate.log"
"%NSSM%" set "%SERVICE%" AppRotateFiles 1
"%NSSM%" set "%SERVICE%" AppRotateOnline 1
"%NSSM%" set "%SERVICE%" AppRotateBytes 10485760
"%NSSM%" set "%SERVICE%" AppStopMethodSkip 6
"%NSSM%" set "%SERVICE%" AppStopMethodConsole 35000
"%NSSM%" set "%SERVICE%" AppExit Default Restart
"%NSSM%" set "%SERVICE%" AppRestartDelay 2000
"%NSSM%" start "%SERVICE%" || exit /b 1
echo Service %SERVICE% installed and started; logs: %ROOT%\logs\llamagate.log
exit /b 0
