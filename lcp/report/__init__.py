"""Per-scene report: tables and plots from `lcp test --eval-out` files."""
