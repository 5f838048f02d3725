"""Workflows: declarative YAML workflows (steps, branches, loops, tools, enforced limits) run over HTTP and as models."""
