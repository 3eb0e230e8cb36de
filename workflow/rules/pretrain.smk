# The plain detector on the detection-favoured (clean) set; its checkpoint initialises both
# the baseline and LCP. A scene may bring an already pretrained checkpoint instead.
#
# Resuming: `lcp train` keeps its checkpoints in a work dir that is not a declared output
# (snakemake deletes the outputs of a failed or killed job, and with them any way to
# resume). The job's one output is the final checkpoint, published atomically when
# training has finished; until then it is a placeholder, so that a job killed together with
# snakemake leaves an output snakemake knows is incomplete (rerun with --rerun-incomplete,
# which the profiles set). See lcp/workflow/workdir.py for when a work dir is resumed; a
# resumed training ends bit-identical to an uninterrupted one (lcp.hooks.RandomStateHook).


rule pretrain:
    input:
        unpack(session.training_inputs("pretrain")),
    output:
        checkpoint=paths.pretrained("{scene}"),
    log:
        paths.log("{scene}", "pretrain"),
    benchmark:
        paths.benchmark("{scene}", "pretrain")
    wildcard_constraints:
        scene=alternatives(session.scenes_pretraining(imported=False)),
    retries: session.job_retries("pretrain")
    conda:
        "../../envs/lcp.yaml"
    threads: session.job_threads("pretrain")
    resources:
        **session.job_resources("pretrain"),
    params:
        args=session.train_args("pretrain"),
        tracking_env=tracking_env("pretrain"),
        gpus=session.train_gpus("pretrain"),
        tracking=tracking_args("pretrain", "baseline"),
        work_dir=paths.work_dir("{scene}", "pretrain"),
    shell:
        commands.train_command(["config", "check", "data"])


rule import_pretrained:
    input:
        session.pretrained_checkpoint,
    output:
        checkpoint=paths.pretrained("{scene}"),
    log:
        paths.log("{scene}", "import_pretrained"),
    wildcard_constraints:
        scene=alternatives(session.scenes_pretraining(imported=True)),
    localrule: True
    conda:
        "../../envs/lcp.yaml"
    shell:
        "(cp {input:q} {output.checkpoint:q}.partial && mv {output.checkpoint:q}.partial {output.checkpoint:q}) > {log} 2>&1"
