# Per-scene report: metrics table (csv + markdown), class-wise AP plot, the crux heat maps
# of the LCP model and, for scenes with a severity sweep, robustness curves; over every seed
# of the scene (mean and spread). All are marked for `snakemake --report report.html`.


rule report:
    input:
        unpack(report_evaluations),
    output:
        csv=report(
            "results/{scene}/report/metrics.csv",
            caption="../report/metrics.rst",
            category="{scene}",
            subcategory="Detection",
        ),
        markdown=report(
            "results/{scene}/report/summary.md",
            caption="../report/metrics.rst",
            category="{scene}",
            subcategory="Detection",
        ),
        plot=report(
            "results/{scene}/report/classwise_ap.png",
            caption="../report/classwise.rst",
            category="{scene}",
            subcategory="Detection",
        ),
    params:
        evals=lambda wildcards, input: shlex.join(f"--eval={name}={path}" for name, path in input.items()),
        artifacts=artifact_logging("report", "report"),
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
        job_command("lcp report metrics --title {wildcards.scene:q} {params.evals}"
                    " --csv {output.csv} --markdown {output.markdown} --plot {output.plot} && {params.artifacts}")


rule report_robustness:
    input:
        unpack(robustness_evaluations),
    output:
        csv=report(
            "results/{scene}/report/robustness.csv",
            caption="../report/robustness.rst",
            category="{scene}",
            subcategory="Robustness",
        ),
        plot=report(
            "results/{scene}/report/robustness.png",
            caption="../report/robustness.rst",
            category="{scene}",
            subcategory="Robustness",
        ),
    params:
        evals=lambda wildcards, input: shlex.join(f"--eval={name}={path}" for name, path in input.items()),
        artifacts=artifact_logging("report_robustness", "report", "robustness"),
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
                    " --plot {output.plot} && {params.artifacts}")


rule crux_heatmaps:
    input:
        unpack(heatmap_inputs),
    output:
        heatmaps=report(
            heatmap_paths("{scene}"),
            caption="../report/heatmaps.rst",
            category="{scene}",
            subcategory="Crux learner",
        ),
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
