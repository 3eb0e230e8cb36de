# Per-scene report: metrics table (csv + markdown + an HTML summary page), class-wise AP plot,
# the data check as a page, sample detections of both methods and the crux heat maps of the
# LCP model (first seed's) and, for scenes with a severity sweep, robustness curves; over every
# seed of the scene (mean and spread). All are marked for `snakemake --report report.html`,
# whose page shows HTML and pictures (a csv or json behind its eye icon is downloaded), each
# entry labelled (`labels=`) instead of named by its path.

# Sample detections per method in the report (the first low-quality test images, like the heat maps).
SAMPLE_DETECTIONS = 3


def sample_detection_paths(scene, method):
    """A method's sample detection pictures (`scene`, `method` may be wildcard patterns)."""
    return [f"results/{scene}/report/detections/{method}_{index}.jpg" for index in range(SAMPLE_DETECTIONS)]


def report_inputs(wildcards):
    """The report's evaluations (METHOD[/seedN] -> eval.json), the data check and the sample detections."""
    samples = [path for method in METHODS for path in sample_detection_paths(wildcards.scene, method)]
    return {**report_evaluations(wildcards), "check": f"results/{wildcards.scene}/data/check.json", "samples": samples}


def report_args(wildcards):
    """`lcp report metrics` arguments: every evaluation, and the sample pictures for the summary page."""
    words = [f"--eval={name}={path}" for name, path in report_evaluations(wildcards).items()]
    pictures = {method: sample_detection_paths(wildcards.scene, method) for method in METHODS}
    words += [f"--samples={method}={pictures[method][index]}" for index in range(SAMPLE_DETECTIONS) for method in METHODS]
    return shlex.join(words)


def robustness_report_args(wildcards, input):
    return shlex.join(f"--eval={name}={path}" for name, path in input.items())


def sample_detection_args(wildcards):
    """`lcp report detections` arguments: the method's model (first seed's) on the low-quality test set."""
    scene_name, method = wildcards.scene, wildcards.method
    words = [SCENES[scene_name][method]["config"], trained_path(scene_name, method, scene_seeds(scene_name)[0])]
    return shlex.join(words + ["--cfg-options"] + cfg_options(scene_name, method))


def sample_detection_inputs(wildcards):
    scene_name, method = wildcards.scene, wildcards.method
    preflight(scene_name, method, cfg_options(scene_name, method))
    scene = SCENES[scene_name]
    return {
        "config": scene[method]["config"],
        "checkpoint": trained_path(scene_name, method, scene_seeds(scene_name)[0]),
        "data": image_set_inputs(scene_name, scene["lowq_set"], ["test"]),
    }


def labelled_pictures(paths, name, subcategory, caption, **labels):
    """Named outputs `name_<i>` for `paths`, each marked for the report as 'test image <i+1>'."""
    return {
        f"{name}_{index}": report(path, caption=caption, category="{scene}", subcategory=subcategory,
                                  labels={"image": f"test image {index + 1}", **labels})
        for index, path in enumerate(paths)
    }


rule report:
    input:
        unpack(report_inputs),
    output:
        html=report(
            "results/{scene}/report/summary.html",
            caption="../report/summary.rst",
            category="{scene}",
            subcategory="Detection",
            labels={"result": "AP summary (tables, sample detections)"},
        ),
        csv=report(
            "results/{scene}/report/metrics.csv",
            caption="../report/metrics.rst",
            category="{scene}",
            subcategory="Detection",
            labels={"result": "metrics table (csv, downloads)"},
        ),
        markdown="results/{scene}/report/summary.md",
        plot=report(
            "results/{scene}/report/classwise_ap.png",
            caption="../report/classwise.rst",
            category="{scene}",
            subcategory="Detection",
            labels={"result": "class-wise AP (plot)"},
        ),
        check=report(
            "results/{scene}/report/data_check.html",
            caption="../report/check.rst",
            category="{scene}",
            subcategory="Data",
            labels={"result": "data check"},
        ),
    params:
        args=report_args,
    log:
        "results/{scene}/logs/report.log",
    benchmark:
        "results/{scene}/benchmarks/report.tsv"
    threads: job_threads("report")
    retries: job_retries("report")
    resources:
        **job_resources("report"),
    conda:
        "../../envs/lcp.yaml"
    shell:
        job_command("lcp report metrics --title {wildcards.scene:q} {params.args} --csv {output.csv}"
                    " --markdown {output.markdown} --plot {output.plot} --html {output.html}"
                    " && lcp report check {input.check:q} --html {output.check}" + log_artifacts("report", "report"))


rule report_robustness:
    input:
        unpack(robustness_evaluations),
    output:
        html=report(
            "results/{scene}/report/robustness.html",
            caption="../report/robustness.rst",
            category="{scene}",
            subcategory="Robustness",
            labels={"result": "AP per severity (table)"},
        ),
        csv=report(
            "results/{scene}/report/robustness.csv",
            caption="../report/robustness.rst",
            category="{scene}",
            subcategory="Robustness",
            labels={"result": "AP per severity (csv, downloads)"},
        ),
        plot=report(
            "results/{scene}/report/robustness.png",
            caption="../report/robustness.rst",
            category="{scene}",
            subcategory="Robustness",
            labels={"result": "AP against severity (plot)"},
        ),
    params:
        evals=robustness_report_args,
    log:
        "results/{scene}/logs/report_robustness.log",
    benchmark:
        "results/{scene}/benchmarks/report_robustness.tsv"
    threads: job_threads("report_robustness")
    retries: job_retries("report_robustness")
    resources:
        **job_resources("report_robustness"),
    conda:
        "../../envs/lcp.yaml"
    shell:
        job_command("lcp report robustness --title {wildcards.scene:q} {params.evals} --csv {output.csv}"
                    " --plot {output.plot} --html {output.html}" + log_artifacts("report_robustness", "report",
                                                                                   "robustness"))


rule sample_detections:
    input:
        unpack(sample_detection_inputs),
    output:
        **labelled_pictures(sample_detection_paths("{scene}", "{method}"), "picture", "Sample detections",
                            "../report/detections.rst", method="{method}"),
    params:
        args=sample_detection_args,
    log:
        "results/{scene}/logs/sample_detections_{method}.log",
    benchmark:
        "results/{scene}/benchmarks/sample_detections_{method}.tsv"
    # drawn like the heat maps, with their resources
    threads: job_threads("crux_heatmaps")
    retries: job_retries("crux_heatmaps")
    resources:
        **job_resources("crux_heatmaps"),
    conda:
        "../../envs/lcp.yaml"
    shell:
        job_command("lcp report detections {params.args} "
                    + " ".join(f"--out {{output.picture_{index}:q}}" for index in range(SAMPLE_DETECTIONS)))


rule crux_heatmaps:
    input:
        unpack(heatmap_inputs),
    output:
        **labelled_pictures(heatmap_paths("{scene}"), "heatmap", "Crux learner", "../report/heatmaps.rst"),
    params:
        args=heatmap_args,
    log:
        "results/{scene}/logs/crux_heatmaps.log",
    benchmark:
        "results/{scene}/benchmarks/crux_heatmaps.tsv"
    threads: job_threads("crux_heatmaps")
    retries: job_retries("crux_heatmaps")
    resources:
        **job_resources("crux_heatmaps"),
    conda:
        "../../envs/lcp.yaml"
    shell:
        job_command("lcp heatmaps {params.args}")
