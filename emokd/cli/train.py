"""`emokd` subcommands: train (filled in by its issue)."""

COMMANDS: list = []
