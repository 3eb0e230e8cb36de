"""The Snakemake workflow's logic, as plain functions of its config dict (the parsed
config/config.yaml), so that it can be unit-tested without Snakemake; workflow/rules/*.smk
only glue these to rules; common.smk keeps what needs Snakemake itself (the schema check, the
session's construction, report() pictures, the wildcard constraints).

- scenes: the config's vocabulary (methods, steps, splits), scene lookups and image sets.
- checks: what the config must satisfy beyond its schema, and the data sets' checks.
- preflight: the checks' primitives (YAML, model configs, image files) and the retry guard of jobs.
- paths: the one owner of every data and results/<scene>/... path.
- converters: which options each `lcp data convert` format and `lcp data synth` take.
- commands: the command line of each rule's job, and the shell around it.
- inputs: what each job reads.
- resources: a job's resources from the config, and their mapping onto SLURM.
- workdir: when a training job's work dir is resumed, and publishing its final checkpoint.
- session: WorkflowSession, the above bound to one run for its rules: input functions that
  check what a job reads while Snakemake builds the DAG (once, in the main process), params
  and job settings from the wildcards; Snakemake's own state (dry run, main process, config
  files, logger, stopping the run) is passed in.
- tracking: MLflow in the jobs: the scenes an invocation tracks, a job's tracking environment and
  flags, the log-artifacts step of check and report jobs (tracking.smk binds them to Snakemake).
"""
