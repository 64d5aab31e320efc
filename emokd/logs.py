"""Logging set-up shared by every command: console plus an optional log file."""

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


_STATE = {"verbose": False, "quiet": False}


LOG_FILE_ONLY = ("distributed", "emokd.libav")   # below ERROR: the log file only, never the console
ALWAYS_LOG_FILE_ONLY = ("asyncio",)              # at any level: the log file only, never the console


def _for_console(record: logging.LogRecord) -> bool:
    """Dask's own housekeeping ("worker process still alive ... killing") and libav's messages are
    for the log file; on the console only with -v, or when they are errors. asyncio's messages
    (aiohttp's "Unclosed client session" when an S3 client is garbage-collected, logged as an
    error) are about a library's housekeeping, never about the user's data: the log file only,
    whatever their level, unless -v."""
    if _STATE["verbose"]:
        return True
    if record.name.startswith(ALWAYS_LOG_FILE_ONLY):
        return False
    return record.levelno >= logging.ERROR or not record.name.startswith(LOG_FILE_ONLY)


class _Console(logging.StreamHandler):
    """The console handler: always the current sys.stderr (test runners swap it)."""

    _emokd_console = True

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(_for_console)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup_logging(log_file: str | Path | None = None, verbose: bool | None = None,
                  quiet: bool | None = None) -> None:
    """Console handler (warnings; with `verbose` debug; with `quiet` errors only) plus an optional
    DEBUG log file. None leaves a setting as an earlier call made it."""
    root = logging.getLogger()
    consoles = [h for h in root.handlers if isinstance(h, _Console)]
    if not consoles:
        console = _Console()
        console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        console.setLevel(logging.WARNING)
        root.addHandler(console)
        consoles = [console]
        root.setLevel(logging.INFO)
    if verbose is not None or quiet is not None:
        _STATE.update({k: bool(v) for k, v in (("verbose", verbose), ("quiet", quiet)) if v is not None})
        level = logging.DEBUG if _STATE["verbose"] else logging.ERROR if _STATE["quiet"] else logging.WARNING
        for console in consoles:
            console.setLevel(level)
        root.setLevel(logging.DEBUG if _STATE["verbose"] else logging.INFO)
    if log_file is not None:
        _add_file_handler(Path(log_file))


def duration(seconds: float) -> str:
    """A short human duration for progress lines: 42s, 3m05s, 2h07m."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def quiet() -> bool:
    """True after `-q`: no progress bars, errors only on the console."""
    return _STATE["quiet"]


class _FileHandler(logging.FileHandler):
    """A log file that, when it cannot be written (a full disk), says so once on stderr and stops
    trying, instead of printing a "--- Logging error ---" traceback for every later record."""

    failed = False

    def handleError(self, record: logging.LogRecord) -> None:
        if self.failed:
            return
        self.failed = True
        exc = sys.exc_info()[1]
        sys.stderr.write(f"warning: {self.baseFilename}: cannot write the log file ({exc}); "
                         "logging to it stops here\n")

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)

    def flush(self) -> None:
        try:
            super().flush()
        except OSError:
            self.handleError(None)

    def close(self) -> None:
        try:
            super().close()
        except OSError:  # the last buffered lines of a full disk: already said
            self.failed = True


def _add_file_handler(path: Path) -> logging.FileHandler | None:
    """A DEBUG-level handler writing to `path`, or None when the root logger already has one."""
    root = logging.getLogger()
    path.parent.mkdir(parents=True, exist_ok=True)
    if any(isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path.resolve()
           for h in root.handlers):
        return None
    handler = _FileHandler(path)
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


@contextlib.contextmanager
def native_stderr_to_log(logger: logging.Logger, level: int = logging.INFO) -> Iterator[None]:
    """Send what C libraries write straight to file descriptor 2 during the block (libav inside
    decord and PyAV: "partial file", "Read error", "moov atom not found") into `logger`, one record
    per line, instead of the user's terminal. Python's own writes to stderr in the block go the same
    way, so use it around decoding only (an extraction task; one thread per worker process)."""
    try:
        saved = os.dup(2)
    except OSError:           # no file descriptor 2 (an embedded interpreter): nothing to redirect
        yield
        return
    with tempfile.TemporaryFile() as captured:
        sys.stderr.flush()
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode("utf-8", "replace").splitlines():
                if line.strip():
                    logger.log(level, "%s", line.rstrip())
