"""Errors a user can act on. The CLI prints them as one line (the traceback only with -v)."""


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
