# Fine-tuning on the low-quality set from the pretrained detector: the plain Cascade R-CNN
# (baseline) and LCP, once per seed of the scene ({seed_dir}: empty for one seed, else
# seed<N>/). Resumable like pretraining (see pretrain.smk). train_lcp is train_baseline with
# the other method.


rule train_baseline:
    input:
        unpack(session.training_inputs("baseline")),
    output:
        checkpoint=paths.checkpoint("{scene}", "baseline", "{seed_dir}"),
    log:
        paths.log("{scene}", "{seed_dir}train_baseline"),
    benchmark:
        paths.benchmark("{scene}", "{seed_dir}train_baseline")
    retries: session.job_retries("train_baseline")
    conda:
        "../../envs/lcp.yaml"
    threads: session.job_threads("train_baseline")
    resources:
        **session.job_resources("train_baseline"),
    params:
        args=session.train_args("baseline"),
        tracking_env=tracking_env("train_baseline"),
        gpus=session.train_gpus("train_baseline"),
        tracking=tracking_args("train", "baseline"),
        work_dir=paths.work_dir("{scene}", "baseline", "{seed_dir}"),
    shell:
        commands.train_command(["config", "check", "init", "data"])


use rule train_baseline as train_lcp with:
    input:
        unpack(session.training_inputs("lcp")),
    output:
        checkpoint=paths.checkpoint("{scene}", "lcp", "{seed_dir}"),
    log:
        paths.log("{scene}", "{seed_dir}train_lcp"),
    benchmark:
        paths.benchmark("{scene}", "{seed_dir}train_lcp")
    retries: session.job_retries("train_lcp")
    threads: session.job_threads("train_lcp")
    resources:
        **session.job_resources("train_lcp"),
    params:
        args=session.train_args("lcp"),
        tracking_env=tracking_env("train_lcp"),
        gpus=session.train_gpus("train_lcp"),
        tracking=tracking_args("train", "lcp"),
        work_dir=paths.work_dir("{scene}", "lcp", "{seed_dir}"),
