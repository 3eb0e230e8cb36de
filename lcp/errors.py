"""The one exception type that `lcp` commands turn into a clear message instead of a traceback,
and the exit status that says so."""

# The exit status of an `lcp` command that refused its input or config (argparse uses it too).
INPUT_REFUSED = 2


class LCPError(Exception):
    """A problem with the user's input or environment; the message names the file and the problem."""
