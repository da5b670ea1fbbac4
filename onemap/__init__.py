"""onemap plumbing: settings, database engine, the local PostGIS cluster, migrations and the CLI.

The three product packages sit on top of this one: ``etl`` (write side), ``layers`` (read
side) and ``dashboard`` (Dash UI). Nothing in here imports them, except the CLI entry point,
which reaches them lazily inside the command that needs them.
"""

__version__ = "0.1.0"
