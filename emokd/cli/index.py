"""`emokd` subcommands: index (filled in by its issue)."""

COMMANDS: list = []
