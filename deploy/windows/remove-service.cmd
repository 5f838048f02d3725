@echo off
rem Stop and remove the LlamaGate Windows service, from an elevated prompt:
rem   deploy\windows\remove-service.cmd [ServiceName]
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
"%NSSM%" stop "%SERVICE%"
"%NSSM%" remove "%SERVICE%" confirm || exit /b 1
echo Service %SERVICE% removed.
exit /b 0
