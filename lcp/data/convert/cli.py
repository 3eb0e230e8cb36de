# Moved to lcp.commands.convert; this shim goes once lcp.data.cli and lcp.workflow.converters import from there.
from lcp.commands.convert import FORMATS, HELP, __doc__, add_arguments, main  # noqa: F401
