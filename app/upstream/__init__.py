"""Clients for the services the gateway forwards to."""
