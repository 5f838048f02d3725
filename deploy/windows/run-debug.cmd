@echo off
rem Serve LlamaGate on this machine only, with debug logs (every upstream call and tool round).
setlocal
set "DEBUG=true"
set "HOST=127.0.0.1"
call "%~dp0run.cmd"
exit /b %ERRORLEVEL%
