"""The error the command line reports as one line, without a traceback."""


class UsageError(ValueError):
    """Bad input from the user: a name, a folder or a data set."""
