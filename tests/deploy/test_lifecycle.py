"""app.lifecycle: per-process resources started once, stopped newest first, failures contained."""

from __future__ import annotations

from flask import Flask

from app import lifecycle


def test_start_in_order_stop_in_reverse_once_each():
    app, calls = Flask(__name__), []
    for name in ("pool", "cache"):
        lifecycle.register(app, name, start=lambda n=name: calls.append(f"start {n}"),
                           stop=lambda n=name: calls.append(f"stop {n}"))
    lifecycle.start_worker_resources(app)
    lifecycle.start_worker_resources(app)
    lifecycle.stop_worker_resources(app)
    lifecycle.stop_worker_resources(app)
    assert calls == ["start pool", "start cache", "stop cache", "stop pool"]


def test_a_failing_callback_does_not_stop_the_others():
    app, calls = Flask(__name__), []

    def broken():
        raise RuntimeError("no")

    lifecycle.register(app, "broken", start=broken, stop=lambda: calls.append("stop broken"))
    lifecycle.register(app, "fine", start=lambda: calls.append("start fine"), stop=broken)
    lifecycle.register(app, "last", stop=lambda: calls.append("stop last"))
    lifecycle.start_worker_resources(app)
    lifecycle.stop_worker_resources(app)
    assert calls == ["start fine", "stop last"]  # what failed to start is not stopped


def test_registering_again_replaces_and_late_registration_starts_at_once():
    app, calls = Flask(__name__), []
    lifecycle.register(app, "pool", start=lambda: calls.append("old"))
    lifecycle.register(app, "pool", start=lambda: calls.append("new"))
    lifecycle.start_worker_resources(app)
    lifecycle.register(app, "late", start=lambda: calls.append("late"))
    assert calls == ["new", "late"]


def test_nothing_registered_and_non_flask_objects_are_fine():
    lifecycle.start_worker_resources(Flask(__name__))
    lifecycle.stop_worker_resources(object())
