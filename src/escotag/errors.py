"""Exceptions raised by escotag. The CLI prints them in one line, without a traceback."""


class EscotagError(Exception):
    """Base class of every error escotag raises on purpose."""


class DataError(EscotagError):
    """An input file is missing, unreadable or malformed; the message names the file (and line)."""

    def __init__(self, path: object, problem: str, line: int | None = None) -> None:
        where = f"{path}, line {line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.line = line


class ConfigError(EscotagError):
    """A setting, model name or argument is invalid."""


class LeakageError(EscotagError):
    """A learned part saw data that the evaluation protocol forbids for the set being scored."""
