"""Routing: which backend of a deployment serves a call."""
