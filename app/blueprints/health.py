"""GET/HEAD /health (Ollama reachable?) and /health/live (process up); no auth, no rate limit."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint
from flask import jsonify

from ..extensions import components
from ..upstream.watch import check

bp = Blueprint("health", __name__)

# A check adds its fields to the report and says whether the gateway can serve with what it found.
Check = Callable[[object], tuple[dict, bool]]


def ollama_check(svc) -> tuple[dict, bool]:
    """`ollama`, `ollama_version`, `ollama_host` as with one backend, and each backend's state; healthy while
    at least one backend is up. HEALTH_SHOW_UPSTREAM=false leaves the addresses out (backend-1, backend-2...)."""
    pool = svc.ollama
    show = svc.settings.get("HEALTH_SHOW_UPSTREAM", True)
    where = {"ollama_host": ",".join(b.config.url for b in pool.backends)} if show else {}
    version, error = check(pool, svc.settings["HEALTH_CHECK_TIMEOUT"])
    with pool.lock:
        backends = [b.report(None if show else f"backend-{i}") for i, b in enumerate(pool.backends, 1)]
    if error is not None:  # the error in the usual envelope, beside the report's own fields
        return {"ollama": "disconnected", **where, "backends": backends, **error.body()}, False
    return {"ollama": "connected", "ollama_version": version, **where, "backends": backends}, True


def redis_check(svc) -> tuple[dict, bool]:
    """`redis` (connected or disconnected) when REDIS_URL is set; the gateway serves without it, so it is never the
    reason for an unhealthy report."""
    return ({} if svc.redis is None else {"redis": svc.redis.state()}), True


CHECKS: list[Check] = [ollama_check, redis_check]


@bp.route("/health", methods=["GET", "HEAD"])
def health():
    svc = components()
    report: dict = {"status": "healthy"}
    healthy = True
    for run in CHECKS:
        fields, ok = run(svc)
        report.update(fields)
        healthy = healthy and ok
    if not healthy:
        report["status"] = "unhealthy"
    return jsonify(report), 200 if healthy else 503


@bp.route("/health/live", methods=["GET", "HEAD"])
def live():
    return jsonify({"status": "alive"})
