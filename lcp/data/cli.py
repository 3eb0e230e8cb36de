"""`lcp data ...`: convert data sets, synthesise degradations, check them, make the demo scene."""
from lcp.commands.data import HELP, add_arguments, main  # noqa: F401  (moved; goes once lcp.cli imports it)
