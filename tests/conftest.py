# tests/ is on sys.path (pytest's rootdir-relative imports; tests is not a package), so
# fixture modules here are plain top-level names.
pytest_plugins = ["slurm_cluster", "mlflow_server"]
