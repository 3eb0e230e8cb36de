# MLflow tracking of the jobs: one experiment per scene, a parent run per invocation.
# The jobs learn where to log from the environment; set here before `envvars:` asserts it.

if config["tracking"]["uri"]:
    os.environ.update(MLFLOW_TRACKING_URI=config["tracking"]["uri"])
os.environ.setdefault("MLFLOW_TRACKING_URI", f"file://{Path('results/mlruns').resolve()}")


envvars:
    "MLFLOW_TRACKING_URI",
