"""lcp.deferred_imports: mmcv/mmdet imported without torchvision, sklearn and pyplot, which still work on first use.

Each check runs in a fresh interpreter: whether a module is imported is a property of the process.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_fresh(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], check=False, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_mmdet_imports_without_the_deferred_modules_which_load_on_first_use():
    out = run_fresh("""
        import sys
        from lcp.deferred_imports import DEFERRED, import_mmdet
        import_mmdet()
        import mmdet.models, mmcv.runner  # already imported: no-ops
        print("loaded", sorted(m for m in ("torchvision", "torch._dynamo", "sklearn", "matplotlib.pyplot")
                               if m in sys.modules))

        import mmcv.runner.checkpoint as checkpoint
        import mmdet.models.dense_heads.paa_head as paa_head
        import mmdet.core.visualization.image as image
        print("resnet50", "resnet50" in checkpoint.get_torchvision_models())
        print("gmm", paa_head.skm.GaussianMixture.__module__)
        print("figure", image.plt.figure.__module__)

        import torchvision, sklearn.mixture, matplotlib.pyplot
        print("same", checkpoint.torchvision._lcp_real is torchvision, paa_head.skm._lcp_real is sklearn.mixture,
              image.plt._lcp_real is matplotlib.pyplot)
        print("real", type(sys.modules["torchvision"]).__name__)
    """)
    assert out.splitlines() == [
        "loaded []",
        "resnet50 True",
        "gmm sklearn.mixture._gaussian_mixture",
        "figure matplotlib.pyplot",
        "same True True True",
        "real module",
    ]


def test_placeholders_leave_sys_modules_and_skip_missing_modules():
    out = run_fresh("""
        import sys
        from lcp.deferred_imports import deferred
        with deferred(("no_such_module_lcp", "json.no_such_child", "sklearn.mixture")) as names:
            print("deferred", names)
            import sklearn.mixture as skm
            try:
                import no_such_module_lcp
            except ImportError:
                print("missing still ImportError")
            print("private while importing", hasattr(skm, "_check_balance"))
        print("after", "sklearn" in sys.modules, "sklearn.mixture" in sys.modules)
        print("private after", hasattr(skm, "_gaussian_mixture"))
        print("now real", "sklearn.mixture" in sys.modules and type(sys.modules["sklearn.mixture"]).__name__)
    """)
    assert out.splitlines() == [
        "deferred ['sklearn', 'sklearn.mixture']",
        "missing still ImportError",
        "private while importing False",
        "after False False",
        "private after True",
        "now real module",
    ]
