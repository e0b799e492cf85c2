"""Accounts, passwords and sessions of the service (no HTTP here: the web
edge is :mod:`agent_ui.auth`)."""
