"""The one exception type that `lcp` commands turn into a clear message instead of a traceback,
and the exit status that says so."""

# The exit status of an `lcp` command that refused its input or config (argparse uses it too).
INPUT_REFUSED = 2


class LCPError(Exception):
    """A problem with the user's input or environment; the message names the file and the problem."""


def error_message(exc: LCPError) -> str:
    """The message of `exc`. An LCPError raised in a data-loader worker (an image that does not
    decode, epochs into a training) reaches the main process re-raised by torch with the worker's
    whole traceback as its message; its own message is that traceback's last entry."""
    text = str(exc)
    raised = f"{LCPError.__module__}.{LCPError.__name__}: "
    if text.startswith("Caught LCPError in DataLoader worker") and raised in text:
        return text.rsplit(raised, 1)[1].strip()
    return text
