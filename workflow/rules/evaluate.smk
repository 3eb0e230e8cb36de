# COCO bbox AP, AP50, AP75 and class-wise AP of both methods on the scene's low-quality test
# set, and on each robustness test set: every seed's model ({seed_dir}, see train.smk).
# evaluate_robustness is evaluate on a severity's test set.


rule evaluate:
    input:
        unpack(session.evaluation_inputs),
    output:
        metrics=paths.evaluation("{scene}", "{method}", "{seed_dir}"),
    log:
        paths.log("{scene}", "{seed_dir}evaluate_{method}"),
    benchmark:
        paths.benchmark("{scene}", "{seed_dir}evaluate_{method}")
    retries: session.job_retries("evaluate")
    conda:
        "../../envs/lcp.yaml"
    threads: session.job_threads("evaluate")
    resources:
        **session.job_resources("evaluate"),
    params:
        args=session.test_args,
        tracking_env=tracking_env("evaluate"),
        tracking=tracking_args("evaluate"),
    shell:
        commands.job_command(
            "{params.tracking_env} lcp test {params.args} {params.tracking} --eval-out {output.metrics}"
        )


use rule evaluate as evaluate_robustness with:
    output:
        metrics=paths.robustness_evaluation("{scene}", "{method}", "{seed_dir}", "{severity}"),
    log:
        paths.log("{scene}", "{seed_dir}evaluate_{method}_{severity}"),
    benchmark:
        paths.benchmark("{scene}", "{seed_dir}evaluate_{method}_{severity}")
    retries: session.job_retries("evaluate_robustness")
    threads: session.job_threads("evaluate_robustness")
    resources:
        **session.job_resources("evaluate_robustness"),
    params:
        args=session.test_args,
        tracking_env=tracking_env("evaluate_robustness"),
        tracking=tracking_args("evaluate"),
