"""`emokd` subcommands: weights (filled in by its issue)."""

COMMANDS: list = []
