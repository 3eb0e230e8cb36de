# Image sets: generated (demo), converted from a data set on disk, or synthesised from a
# clean set; robustness test sets; and the data check that gates training (a scene with
# `degradation: none` gets `lcp data check --degradation none`: its real low-quality images
# and annotations checked alone, nothing paired).

from lcp.data.demo_sizes import NUM_IMAGES


rule make_demo_data:
    output:
        directory(f"{session.data}/{{dataset}}"),
    log:
        paths.dataset_log("{dataset}", "make_demo_data"),
    benchmark:
        paths.dataset_benchmark("{dataset}", "make_demo_data")
    wildcard_constraints:
        dataset=alternatives(session.demo_datasets),
    retries: session.job_retries("make_demo_data")
    conda:
        "../../envs/lcp.yaml"
    threads: session.job_threads("make_demo_data")
    resources:
        **session.job_resources("make_demo_data"),
    params:
        seed=session.demo_setting("seed", config["seed"]),
        num_images=session.demo_setting("num_images", NUM_IMAGES),
    shell:
        commands.job_command("lcp data demo --out {output} --seed {params.seed} --num-images {params.num_images}")


rule convert_image_set:
    input:
        session.convert_sources,
    output:
        images=directory(f"{session.data}/{paths.converted_set('{dataset}', '{imageset}')['images']}"),
        annotations=[f"{session.data}/{paths.converted_set('{dataset}', '{imageset}')[split]}" for split in SPLITS],
    log:
        paths.dataset_log("{dataset}", "convert_{imageset}"),
    benchmark:
        paths.dataset_benchmark("{dataset}", "convert_{imageset}")
    wildcard_constraints:
        dataset=alternatives({dataset for dataset, _ in session.converted}),
        imageset=alternatives({image_set for _, image_set in session.converted}),
    retries: session.job_retries("convert_image_set")
    conda:
        "../../envs/lcp.yaml"
    threads: session.job_threads("convert_image_set")
    resources:
        **session.job_resources("convert_image_set"),
    params:
        args=lambda wildcards: commands.convert_args(config, wildcards.dataset, wildcards.imageset),
    shell:
        commands.job_command("lcp data convert {params.args} --workers {threads}")


rule synthesize_image_set:
    input:
        session.synthesis_sources,
    output:
        images=directory(f"{session.data}/{paths.synthesized_set('{dataset}', '{imageset}')['images']}"),
        annotations=[f"{session.data}/{paths.synthesized_set('{dataset}', '{imageset}')[split]}" for split in SPLITS],
    log:
        paths.dataset_log("{dataset}", "synthesize_{imageset}"),
    benchmark:
        paths.dataset_benchmark("{dataset}", "synthesize_{imageset}")
    wildcard_constraints:
        dataset=alternatives({dataset for dataset, _ in session.synthesized}),
        imageset=alternatives({image_set for _, image_set in session.synthesized}),
    retries: session.job_retries("synthesize_image_set")
    conda:
        "../../envs/lcp.yaml"
    threads: session.job_threads("synthesize_image_set")
    resources:
        **session.job_resources("synthesize_image_set"),
    params:
        args=lambda wildcards: commands.synthesize_args(config, wildcards.dataset, wildcards.imageset),
    shell:
        commands.job_command("lcp data synth {params.args} --workers {threads}")


rule synthesize_robustness_set:
    input:
        session.robustness_sources,
    output:
        images=directory(f"{session.data}/{paths.robustness_set('{scene}', '{severity}')['images']}"),
        annotations=f"{session.data}/{paths.robustness_set('{scene}', '{severity}')['test']}",
    log:
        paths.log("{scene}", "synthesize_robustness_{severity}"),
    benchmark:
        paths.benchmark("{scene}", "synthesize_robustness_{severity}")
    retries: session.job_retries("synthesize_robustness_set")
    conda:
        "../../envs/lcp.yaml"
    threads: session.job_threads("synthesize_robustness_set")
    resources:
        **session.job_resources("synthesize_robustness_set"),
    params:
        args=lambda wildcards: commands.robustness_args(config, wildcards.scene, wildcards.severity),
    shell:
        commands.job_command("lcp data synth {params.args} --workers {threads}")


rule check_data:
    input:
        unpack(session.check_inputs),
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
    retries: session.job_retries("check_data")
    conda:
        "../../envs/lcp.yaml"
    threads: session.job_threads("check_data")
    resources:
        **session.job_resources("check_data"),
    params:
        args=lambda wildcards: commands.check_args(config, wildcards.scene),
    shell:
        commands.job_command(
            "lcp data check {params.args} --workers {threads} --report {output.report}",
            log_artifacts("check_data", "check"),
        )
