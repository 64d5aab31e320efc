"""Errors a user can act on. The CLI prints them as one line (the traceback only with -v)."""

import errno


class EmokdError(Exception):
    """Base class: the message names the file or setting and what is wrong."""


class ConfigError(EmokdError):
    pass


class WeightsError(EmokdError):
    pass


class DataError(EmokdError):
    pass


class CacheError(EmokdError):
    pass


# Errors of the machine rather than of an input: a full disk or quota, a file-size limit, a
# read-only filesystem. Work stops (the rerun resumes); the video is not recorded as bad.
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def environment_error(exc: BaseException | None) -> OSError | None:
    """The OSError of a full disk, quota, file-size limit or read-only filesystem behind `exc`
    (itself, or its cause or context), else None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None
