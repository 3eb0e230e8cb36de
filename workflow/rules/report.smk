# Per-scene report: metrics table (csv + markdown + an HTML summary page), class-wise AP plot,
# the data check as a page, sample detections of both methods and the crux heat maps of the
# LCP model (first seed's) and, for scenes with a severity sweep, robustness curves; over every
# seed of the scene (mean and spread). All are marked for `snakemake --report report.html`,
# whose page shows HTML and pictures (a csv or json behind its eye icon is downloaded), each
# entry labelled (`labels=`) instead of named by its path.


rule report:
    input:
        unpack(lambda wildcards: inputs.report_inputs(config, wildcards.scene)),
    output:
        html=report(
            paths.report_file("{scene}", "summary.html"),
            caption="../report/summary.rst",
            category="{scene}",
            subcategory="Detection",
            labels={"result": "AP summary (tables, sample detections)"},
        ),
        csv=report(
            paths.report_file("{scene}", "metrics.csv"),
            caption="../report/metrics.rst",
            category="{scene}",
            subcategory="Detection",
            labels={"result": "metrics table (csv, downloads)"},
        ),
        markdown=paths.report_file("{scene}", "summary.md"),
        plot=report(
            paths.report_file("{scene}", "classwise_ap.png"),
            caption="../report/classwise.rst",
            category="{scene}",
            subcategory="Detection",
            labels={"result": "class-wise AP (plot)"},
        ),
        check=report(
            paths.report_file("{scene}", "data_check.html"),
            caption="../report/check.rst",
            category="{scene}",
            subcategory="Data",
            labels={"result": "data check"},
        ),
    log:
        paths.log("{scene}", "report"),
    benchmark:
        paths.benchmark("{scene}", "report")
    retries: session.job_retries("report")
    conda:
        "../../envs/lcp.yaml"
    threads: session.job_threads("report")
    resources:
        **session.job_resources("report"),
    params:
        args=lambda wildcards: commands.report_args(config, wildcards.scene),
    shell:
        commands.job_command(
            "lcp report metrics --title {wildcards.scene:q} {params.args} --csv {output.csv}"
            " --markdown {output.markdown} --plot {output.plot} --html {output.html}"
            " && lcp report check {input.check:q} --html {output.check}",
            log_artifacts("report", "report"),
        )


rule report_robustness:
    input:
        unpack(lambda wildcards: commands.robustness_evaluations(config, wildcards.scene)),
        code=inputs.report_code(),
    output:
        html=report(
            paths.report_file("{scene}", "robustness.html"),
            caption="../report/robustness.rst",
            category="{scene}",
            subcategory="Robustness",
            labels={"result": "AP per severity (table)"},
        ),
        csv=report(
            paths.report_file("{scene}", "robustness.csv"),
            caption="../report/robustness.rst",
            category="{scene}",
            subcategory="Robustness",
            labels={"result": "AP per severity (csv, downloads)"},
        ),
        plot=report(
            paths.report_file("{scene}", "robustness.png"),
            caption="../report/robustness.rst",
            category="{scene}",
            subcategory="Robustness",
            labels={"result": "AP against severity (plot)"},
        ),
    log:
        paths.log("{scene}", "report_robustness"),
    benchmark:
        paths.benchmark("{scene}", "report_robustness")
    retries: session.job_retries("report_robustness")
    conda:
        "../../envs/lcp.yaml"
    threads: session.job_threads("report_robustness")
    resources:
        **session.job_resources("report_robustness"),
    params:
        evals=lambda wildcards: commands.robustness_report_args(
            commands.robustness_evaluations(config, wildcards.scene)
        ),
    shell:
        commands.job_command(
            "lcp report robustness --title {wildcards.scene:q} {params.evals} --csv {output.csv}"
            " --plot {output.plot} --html {output.html}",
            log_artifacts("report_robustness", "report", "robustness"),
        )


rule sample_detections:
    input:
        unpack(session.first_model_inputs()),
    output:
        **labelled_pictures(
            paths.sample_detections("{scene}", "{method}"),
            "picture",
            "Sample detections",
            "../report/detections.rst",
            method="{method}",
        ),
    log:
        paths.log("{scene}", "sample_detections_{method}"),
    benchmark:
        paths.benchmark("{scene}", "sample_detections_{method}")
    retries: session.job_retries("crux_heatmaps")
    conda:
        "../../envs/lcp.yaml"
    # drawn like the heat maps, with their resources
    threads: session.job_threads("crux_heatmaps")
    resources:
        **session.job_resources("crux_heatmaps"),
    params:
        args=lambda wildcards: commands.sample_detection_args(config, wildcards.scene, wildcards.method),
    shell:
        commands.job_command(
            "lcp report detections {params.args} "
            + " ".join(f"--out {{output.picture_{index}:q}}" for index in range(paths.SAMPLE_DETECTIONS))
        )


rule crux_heatmaps:
    input:
        unpack(session.first_model_inputs("lcp")),
    output:
        **labelled_pictures(paths.heatmaps("{scene}"), "heatmap", "Crux learner", "../report/heatmaps.rst"),
    log:
        paths.log("{scene}", "crux_heatmaps"),
    benchmark:
        paths.benchmark("{scene}", "crux_heatmaps")
    retries: session.job_retries("crux_heatmaps")
    conda:
        "../../envs/lcp.yaml"
    threads: session.job_threads("crux_heatmaps")
    resources:
        **session.job_resources("crux_heatmaps"),
    params:
        args=lambda wildcards: commands.heatmap_args(config, wildcards.scene),
    shell:
        commands.job_command("lcp heatmaps {params.args}")
