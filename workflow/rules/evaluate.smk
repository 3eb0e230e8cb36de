# COCO bbox AP, AP50, AP75 and class-wise AP of both methods on the scene's low-quality test
# set, and on each robustness test set: every seed's model ({seed_dir}, see train.smk).


rule evaluate:
    input:
        unpack(evaluation_inputs),
    output:
        metrics="results/{scene}/{method}/{seed_dir}eval.json",
    params:
        args=test_args,
        tracking_env=tracking_env("evaluate"),
        tracking=tracking_args("evaluate"),
    log:
        "results/{scene}/logs/{seed_dir}evaluate_{method}.log",
    benchmark:
        "results/{scene}/benchmarks/{seed_dir}evaluate_{method}.tsv"
    threads: job_threads("evaluate")
    retries: job_retries("evaluate")
    resources:
        **job_resources("evaluate"),
    conda:
        "../../envs/lcp.yaml"
    shell:
        job_command("{params.tracking_env} lcp test {params.args} {params.tracking} --eval-out {output.metrics}")


rule evaluate_robustness:
    input:
        unpack(evaluation_inputs),
    output:
        metrics="results/{scene}/{method}/{seed_dir}robustness/{severity}.json",
    params:
        args=test_args,
        tracking_env=tracking_env("evaluate_robustness"),
        tracking=tracking_args("evaluate"),
    log:
        "results/{scene}/logs/{seed_dir}evaluate_{method}_{severity}.log",
    benchmark:
        "results/{scene}/benchmarks/{seed_dir}evaluate_{method}_{severity}.tsv"
    threads: job_threads("evaluate_robustness")
    retries: job_retries("evaluate_robustness")
    resources:
        **job_resources("evaluate_robustness"),
    conda:
        "../../envs/lcp.yaml"
    shell:
        job_command("{params.tracking_env} lcp test {params.args} {params.tracking} --eval-out {output.metrics}")
