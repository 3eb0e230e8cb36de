# Fine-tuning on the low-quality set from the pretrained detector: the plain Cascade R-CNN
# (baseline) and LCP, once per seed of the scene ({seed_dir}: empty for one seed, else
# seed<N>/). Resumable like pretraining (see pretrain.smk).


rule train_baseline:
    input:
        unpack(training_inputs("baseline")),
    output:
        checkpoint="results/{scene}/baseline/{seed_dir}latest.pth",
    params:
        work_dir="results/{scene}/baseline/{seed_dir}work",
        args=train_args("baseline"),
        tracking_env=tracking_env("train_baseline"),
        gpus=train_gpus_option("train_baseline"),
        tracking=tracking_args("train", "baseline"),
    log:
        "results/{scene}/logs/{seed_dir}train_baseline.log",
    benchmark:
        "results/{scene}/benchmarks/{seed_dir}train_baseline.tsv"
    threads: job_threads("train_baseline")
    retries: job_retries("train_baseline")
    resources:
        **job_resources("train_baseline"),
    conda:
        "../../envs/lcp.yaml"
    shell:
        train_command(["config", "check", "init"])


rule train_lcp:
    input:
        unpack(training_inputs("lcp")),
    output:
        checkpoint="results/{scene}/lcp/{seed_dir}latest.pth",
    params:
        work_dir="results/{scene}/lcp/{seed_dir}work",
        args=train_args("lcp"),
        tracking_env=tracking_env("train_lcp"),
        gpus=train_gpus_option("train_lcp"),
        tracking=tracking_args("train", "lcp"),
    log:
        "results/{scene}/logs/{seed_dir}train_lcp.log",
    benchmark:
        "results/{scene}/benchmarks/{seed_dir}train_lcp.tsv"
    threads: job_threads("train_lcp")
    retries: job_retries("train_lcp")
    resources:
        **job_resources("train_lcp"),
    conda:
        "../../envs/lcp.yaml"
    shell:
        train_command(["config", "check", "init"])
