"""Upstream hosts: one module per wire protocol behind the `Provider` protocol."""
