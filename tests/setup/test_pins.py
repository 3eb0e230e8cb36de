"""The three places that pin versions (pyproject.toml, envs/lcp.yaml, scripts/pins.env) agree."""

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
BUILT_BY_INSTALL_SCRIPT = {"mmcv-full"}


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = {}
    for requirement in project["dependencies"]:
        name, sep, version = requirement.partition("==")
        assert sep, f"pyproject.toml: dependency {requirement!r} is not pinned with =="
        pins[name.strip().lower()] = version.strip()
    return pins


def conda_pins() -> dict[str, str]:
    env = yaml.safe_load((REPO / "envs" / "lcp.yaml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    pins = {}
    for requirement in pip_section:
        name, sep, version = requirement.partition("==")
        assert sep, f"envs/lcp.yaml: pip requirement {requirement!r} is not pinned with =="
        pins[name.strip().lower()] = version.strip()
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    pins["python"] = python.split("=", 1)[1]
    return pins


def install_script_pins() -> dict[str, str]:
    text = (REPO / "scripts" / "pins.env").read_text()
    return dict(re.findall(r"^([A-Z_]+)=(\S+)$", text, flags=re.M))


def test_conda_env_has_exactly_the_package_pins():
    package = pyproject_pins()
    conda = conda_pins()
    expected = {k: v for k, v in package.items() if k not in BUILT_BY_INSTALL_SCRIPT}
    assert {k: v for k, v in conda.items() if k != "python"} == expected


def test_conda_python_satisfies_requires_python():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    minimum = project["requires-python"].removeprefix(">=")
    assert tuple(map(int, conda_pins()["python"].split("."))) >= tuple(map(int, minimum.split(".")))
    assert install_script_pins()["PYTHON_MIN"] == minimum


def test_install_script_builds_the_pinned_versions():
    package = pyproject_pins()
    script = install_script_pins()
    for env_name, package_name in [
        ("TORCH", "torch"),
        ("TORCHVISION", "torchvision"),
        ("MMCV", "mmcv-full"),
        ("MMDET", "mmdet"),
        ("NUMPY", "numpy"),
        ("OPENCV", "opencv-python-headless"),
        ("SETUPTOOLS", "setuptools"),
    ]:
        assert script[env_name] == package[package_name], env_name
