# Image sets: generated (demo), converted from a data set on disk, or synthesised from a
# clean set; robustness test sets; and the data check that gates training (a scene with
# `degradation: none` gets `lcp data check --degradation none`: its real low-quality images
# and annotations checked alone, nothing paired).


rule make_demo_data:
    output:
        directory(f"{DATA}/{{dataset}}"),
    params:
        seed=lambda wildcards: SCENES[DEMO_DATASETS[wildcards.dataset]]["demo"].get("seed", config["seed"]),
        num_images=lambda wildcards: SCENES[DEMO_DATASETS[wildcards.dataset]]["demo"].get("num_images", 300),
    wildcard_constraints:
        dataset=alternatives(DEMO_DATASETS),
    log:
        f"results/datasets/{{dataset}}/logs/make_demo_data.log",
    benchmark:
        f"results/datasets/{{dataset}}/benchmarks/make_demo_data.tsv"
    threads: job_threads("make_demo_data")
    retries: job_retries("make_demo_data")
    resources:
        **job_resources("make_demo_data"),
    conda:
        "../../envs/lcp.yaml"
    shell:
        job_command("lcp data demo --out {output} --seed {params.seed} --num-images {params.num_images}")


rule convert_image_set:
    input:
        convert_sources,
    output:
        images=directory(f"{DATA}/{{dataset}}/{{imageset}}"),
        annotations=expand(f"{DATA}/{{{{dataset}}}}/annotations/{{{{imageset}}}}_{{split}}.json", split=SPLITS),
    params:
        args=convert_args,
    wildcard_constraints:
        dataset=alternatives({dataset for dataset, _ in CONVERTED}),
        imageset=alternatives({image_set for _, image_set in CONVERTED}),
    log:
        f"results/datasets/{{dataset}}/logs/convert_{{imageset}}.log",
    benchmark:
        f"results/datasets/{{dataset}}/benchmarks/convert_{{imageset}}.tsv"
    threads: job_threads("convert_image_set")
    retries: job_retries("convert_image_set")
    resources:
        **job_resources("convert_image_set"),
    conda:
        "../../envs/lcp.yaml"
    shell:
        job_command("lcp data convert {params.args} --workers {threads}")


rule synthesize_image_set:
    input:
        synthesis_sources,
    output:
        images=directory(f"{DATA}/synthesized/{{dataset}}/{{imageset}}"),
        annotations=expand(f"{DATA}/synthesized/{{{{dataset}}}}/{{{{imageset}}}}_{{split}}.json", split=SPLITS),
    params:
        args=synthesize_args,
    wildcard_constraints:
        dataset=alternatives({dataset for dataset, _ in SYNTHESIZED}),
        imageset=alternatives({image_set for _, image_set in SYNTHESIZED}),
    log:
        f"results/datasets/{{dataset}}/logs/synthesize_{{imageset}}.log",
    benchmark:
        f"results/datasets/{{dataset}}/benchmarks/synthesize_{{imageset}}.tsv"
    threads: job_threads("synthesize_image_set")
    retries: job_retries("synthesize_image_set")
    resources:
        **job_resources("synthesize_image_set"),
    conda:
        "../../envs/lcp.yaml"
    shell:
        job_command("lcp data synth {params.args} --workers {threads}")


rule synthesize_robustness_set:
    input:
        robustness_sources,
    output:
        images=directory(f"{DATA}/robustness/{{scene}}/{{severity}}"),
        annotations=f"{DATA}/robustness/{{scene}}/{{severity}}_test.json",
    params:
        args=robustness_args,
    log:
        "results/{scene}/logs/synthesize_robustness_{severity}.log",
    benchmark:
        "results/{scene}/benchmarks/synthesize_robustness_{severity}.tsv"
    threads: job_threads("synthesize_robustness_set")
    retries: job_retries("synthesize_robustness_set")
    resources:
        **job_resources("synthesize_robustness_set"),
    conda:
        "../../envs/lcp.yaml"
    shell:
        job_command("lcp data synth {params.args} --workers {threads}")


rule check_data:
    input:
        clean=lambda wildcards: image_set_inputs(wildcards.scene, SCENES[wildcards.scene]["clean_set"]),
        lowq=lambda wildcards: image_set_inputs(wildcards.scene, SCENES[wildcards.scene]["lowq_set"]),
    output:
        report=report(
            "results/{scene}/data/check.json",
            caption="../report/check.rst",
            category="{scene}",
            subcategory="Data",
            labels={"result": "data check (json, downloads)"},
        ),
    params:
        args=check_args,
    log:
        "results/{scene}/logs/check_data.log",
    benchmark:
        "results/{scene}/benchmarks/check_data.tsv"
    threads: job_threads("check_data")
    retries: job_retries("check_data")
    resources:
        **job_resources("check_data"),
    conda:
        "../../envs/lcp.yaml"
    shell:
        job_command("lcp data check {params.args} --workers {threads} --report {output.report}"
                    + log_artifacts("check_data", "check"))
