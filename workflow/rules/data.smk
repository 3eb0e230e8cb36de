# Image sets: generated (demo), converted from a data set on disk, or synthesised from a
# clean set; robustness test sets; and the data check that gates training (a scene with
# `degradation: none` gets `lcp data check --degradation none`: its real low-quality images
# and annotations checked alone, nothing paired).


rule make_demo_data:
    output:
        directory(f"{DATA}/{{dataset}}"),
    log:
        paths.dataset_log("{dataset}", "make_demo_data"),
    benchmark:
        paths.dataset_benchmark("{dataset}", "make_demo_data")
    wildcard_constraints:
        dataset=alternatives(DEMO_DATASETS),
    retries: job_retries("make_demo_data")
    conda:
        "../../envs/lcp.yaml"
    threads: job_threads("make_demo_data")
    resources:
        **job_resources("make_demo_data"),
    params:
        seed=lambda wildcards: SCENES[DEMO_DATASETS[wildcards.dataset]]["demo"].get("seed", config["seed"]),
        num_images=lambda wildcards: SCENES[DEMO_DATASETS[wildcards.dataset]]["demo"].get("num_images", 300),
    shell:
        job_command("lcp data demo --out {output} --seed {params.seed} --num-images {params.num_images}")


rule convert_image_set:
    input:
        convert_sources,
    output:
        images=directory(f"{DATA}/{paths.converted_set('{dataset}', '{imageset}')['images']}"),
        annotations=[f"{DATA}/{paths.converted_set('{dataset}', '{imageset}')[split]}" for split in SPLITS],
    log:
        paths.dataset_log("{dataset}", "convert_{imageset}"),
    benchmark:
        paths.dataset_benchmark("{dataset}", "convert_{imageset}")
    wildcard_constraints:
        dataset=alternatives({dataset for dataset, _ in CONVERTED}),
        imageset=alternatives({image_set for _, image_set in CONVERTED}),
    retries: job_retries("convert_image_set")
    conda:
        "../../envs/lcp.yaml"
    threads: job_threads("convert_image_set")
    resources:
        **job_resources("convert_image_set"),
    params:
        args=lambda wildcards: commands.convert_args(config, wildcards.dataset, wildcards.imageset),
    shell:
        job_command("lcp data convert {params.args} --workers {threads}")


rule synthesize_image_set:
    input:
        synthesis_sources,
    output:
        images=directory(f"{DATA}/{paths.synthesized_set('{dataset}', '{imageset}')['images']}"),
        annotations=[f"{DATA}/{paths.synthesized_set('{dataset}', '{imageset}')[split]}" for split in SPLITS],
    log:
        paths.dataset_log("{dataset}", "synthesize_{imageset}"),
    benchmark:
        paths.dataset_benchmark("{dataset}", "synthesize_{imageset}")
    wildcard_constraints:
        dataset=alternatives({dataset for dataset, _ in SYNTHESIZED}),
        imageset=alternatives({image_set for _, image_set in SYNTHESIZED}),
    retries: job_retries("synthesize_image_set")
    conda:
        "../../envs/lcp.yaml"
    threads: job_threads("synthesize_image_set")
    resources:
        **job_resources("synthesize_image_set"),
    params:
        args=lambda wildcards: commands.synthesize_args(config, wildcards.dataset, wildcards.imageset),
    shell:
        job_command("lcp data synth {params.args} --workers {threads}")


rule synthesize_robustness_set:
    input:
        robustness_sources,
    output:
        images=directory(f"{DATA}/{paths.robustness_set('{scene}', '{severity}')['images']}"),
        annotations=f"{DATA}/{paths.robustness_set('{scene}', '{severity}')['test']}",
    log:
        paths.log("{scene}", "synthesize_robustness_{severity}"),
    benchmark:
        paths.benchmark("{scene}", "synthesize_robustness_{severity}")
    retries: job_retries("synthesize_robustness_set")
    conda:
        "../../envs/lcp.yaml"
    threads: job_threads("synthesize_robustness_set")
    resources:
        **job_resources("synthesize_robustness_set"),
    params:
        args=lambda wildcards: commands.robustness_args(config, wildcards.scene, wildcards.severity),
    shell:
        job_command("lcp data synth {params.args} --workers {threads}")


rule check_data:
    input:
        unpack(check_inputs),
    output:
        report=report(
            paths.data_check("{scene}"),
            caption="../report/check.rst",
            category="{scene}",
            subcategory="Data",
            labels={"result": "data check (json, downloads)"},
        ),
    log:
        paths.log("{scene}", "check_data"),
    benchmark:
        paths.benchmark("{scene}", "check_data")
    retries: job_retries("check_data")
    conda:
        "../../envs/lcp.yaml"
    threads: job_threads("check_data")
    resources:
        **job_resources("check_data"),
    params:
        args=lambda wildcards: commands.check_args(config, wildcards.scene),
    shell:
        job_command(
            "lcp data check {params.args} --workers {threads} --report {output.report}",
            log_artifacts("check_data", "check"),
        )
