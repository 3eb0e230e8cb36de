# Fine-tuning on the low-quality set from the pretrained detector: the plain Cascade R-CNN
# (baseline) and LCP, once per seed of the scene ({seed_dir}: empty for one seed, else
# seed<N>/). Resumable like pretraining (see pretrain.smk). train_lcp is train_baseline with
# the other method.


rule train_baseline:
    input:
        unpack(training_inputs("baseline")),
    output:
        checkpoint=paths.checkpoint("{scene}", "baseline", "{seed_dir}"),
    log:
        paths.log("{scene}", "{seed_dir}train_baseline"),
    benchmark:
        paths.benchmark("{scene}", "{seed_dir}train_baseline")
    retries: job_retries("train_baseline")
    conda:
        "../../envs/lcp.yaml"
    threads: job_threads("train_baseline")
    resources:
        **job_resources("train_baseline"),
    params:
        **training_params("baseline", "train_baseline", "train", "baseline"),
        work_dir=paths.work_dir("{scene}", "baseline", "{seed_dir}"),
    shell:
        train_command(["config", "check", "init"])


use rule train_baseline as train_lcp with:
    input:
        unpack(training_inputs("lcp")),
    output:
        checkpoint=paths.checkpoint("{scene}", "lcp", "{seed_dir}"),
    log:
        paths.log("{scene}", "{seed_dir}train_lcp"),
    benchmark:
        paths.benchmark("{scene}", "{seed_dir}train_lcp")
    retries: job_retries("train_lcp")
    threads: job_threads("train_lcp")
    resources:
        **job_resources("train_lcp"),
    params:
        **training_params("lcp", "train_lcp", "train", "lcp"),
        work_dir=paths.work_dir("{scene}", "lcp", "{seed_dir}"),
