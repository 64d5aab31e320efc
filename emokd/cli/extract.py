"""`emokd` subcommands: extract (filled in by its issue)."""

COMMANDS: list = []
