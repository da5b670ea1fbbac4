"""onemap plumbing: settings, database engine, the local PostGIS cluster and its roles,
migrations, coordinate systems, users, sessions and the audit log, what the CLI prints,
and the CLI itself.

The product packages sit on top of this one: ``etl`` (write side) with ``democity`` above
it, and ``layers`` (read side) with ``web`` (HTTP) and ``dashboard`` (Dash UI) above it.
Nothing in here imports them, except the CLI entry point ``onemap.cli``, the composition
root, which reaches them inside the command that needs them (the import contract in
``pyproject.toml`` holds it so).
"""

__version__ = "0.1.0"
