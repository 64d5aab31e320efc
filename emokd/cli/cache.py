"""`emokd` subcommands: cache (filled in by its issue)."""

COMMANDS: list = []
