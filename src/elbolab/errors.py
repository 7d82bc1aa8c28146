"""Exceptions that the CLI turns into a one-line message and exit code 2."""


class ElbolabError(Exception):
    """Base class of errors caused by bad input (data, settings), not by a bug."""


class DataError(ElbolabError, ValueError):
    """A data file is missing, malformed or disagrees with its companion files.

    The message names the file and, where it applies, the 1-based line number.
    """

    def __init__(self, message, path=None, line=None):
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f":{line}"
            where += ": "
        super().__init__(where + message)
        self.path = path
        self.line = line


class ConfigError(ElbolabError, ValueError):
    """An impossible or unknown setting (parameter name in the message)."""


class NumericalError(ElbolabError, FloatingPointError):
    """A computation reached NaN or infinity (a step too large, a setting out of range);
    the message says where, and nothing with NaN in it is written."""
