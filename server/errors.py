"""Errors raised by the server room."""

from __future__ import annotations


class ServerError(Exception):
    """Root of every error the server room raises."""


class SettingsError(ServerError):
    """Raised when a VIVA_* environment variable (or .env line) cannot be turned into the setting it names."""
