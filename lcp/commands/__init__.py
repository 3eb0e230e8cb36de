"""The `lcp` sub-commands: one module per command, each exposing HELP, add_arguments(parser) and
main(args) -> int (see lcp/cli.py). A command module only parses arguments, calls the library with
plain typed arguments and prints; the work lives in the packages below lcp/."""
