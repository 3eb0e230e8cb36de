"""The one exception type that `lcp` commands turn into a clear message instead of a traceback."""


class LCPError(Exception):
    """A problem with the user's input or environment; the message names the file and the problem."""
