"""The server room: settings, the CLI entry point `viva`, and (later) the Litestar app, database and jobs.

It may import every other room; nothing imports it.
"""
