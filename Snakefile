# The lcp workflow: per scene, data -> synthesis checks -> pretraining on the
# detection-favoured set -> baseline and LCP training on the low-quality set -> evaluation
# (and a robustness sweep) -> report. Scenes and resources live in config/config.yaml.
#
#   snakemake --profile profiles/local                        # every scene in `run`
#   snakemake --profile profiles/local results/demo/lcp/seed0/eval.json   # one seed of the demo
#   snakemake --profile profiles/slurm --config 'run=[foggy_city]'
#   snakemake --report report.html                            # browsable report

from snakemake.utils import min_version

min_version("9.0")

import sys

from lcp.workflow.preflight import yaml_problem

# snakemake runs a module's onstart, onsuccess and onerror not at all (they guard the trainings
# and open and close the MLflow runs), and a prefix `as x_*` renames the rules the jobs' settings follow
if not workflow.modifier.is_main_snakefile():
    sys.exit(
        f"{workflow.main_snakefile}: lcp's Snakefile runs as the main workflow only, not as a module; run "
        "`snakemake --snakefile LCP/Snakefile --directory PROJECT --configfile CONFIG` (README, Running the pipeline)"
    )

# snakemake's own message for a YAML error names neither the line nor the column
if problem := yaml_problem("config/config.yaml"):
    sys.exit(f"invalid config: {problem}")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/tracking.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


onstart:
    session.refuse_placeholder_models()
    session.forget_unfixable_failures()
    session.note_interrupted_trainings()
    start_tracking()


onsuccess:
    finish_tracking("FINISHED", log)
    for line in results_pointers():
        logger.info(line)


onerror:
    finish_tracking("FAILED", log)


rule all:
    default_target: True
    input:
        [target for scene in config["run"] for target in inputs.scene_targets(config, scene)],
