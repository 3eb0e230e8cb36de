"""Functions the `lcp train/test/infer` tools are built from (importable without the CLI)."""
