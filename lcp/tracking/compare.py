from lcp.commands.compare import HELP, __doc__, add_arguments, main  # noqa: F401  until lcp/cli.py names lcp.commands.compare
