"""Logging set-up shared by every command: console plus an optional log file."""

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(log_file: str | Path | None = None, verbose: bool = False) -> None:
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
               for h in root.handlers):
        console = logging.StreamHandler()
        console.setLevel(logging.DEBUG if verbose else logging.WARNING)
        console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        root.addHandler(console)
    if log_file is not None:
        _add_file_handler(Path(log_file))


def _add_file_handler(path: Path) -> logging.FileHandler | None:
    """A DEBUG-level handler writing to `path`, or None when the root logger already has one."""
    root = logging.getLogger()
    path.parent.mkdir(parents=True, exist_ok=True)
    if any(isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path.resolve()
           for h in root.handlers):
        return None
    handler = logging.FileHandler(path)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    return handler


@contextlib.contextmanager
def file_log(path: str | Path) -> Iterator[None]:
    """Log everything to `path` for the duration of one job, then detach, so that a second job
    in the same process (tests, notebooks, the demo) does not write into the first one's log."""
    setup_logging()
    handler = _add_file_handler(Path(path))
    try:
        yield
    finally:
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()
