"""scripts/install.sh stops with one clear line, before installing anything, when the
interpreter is too old or the compiler needed for mmcv-full's ops is missing."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "scripts" / "install.sh"


def run_install(tmp_path: Path, env_overrides: dict[str, str]) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "LCP_VENV": str(tmp_path / "venv"),
        "LCP_WHEEL_CACHE": str(tmp_path / "empty-cache"),
        **env_overrides,
    }
    return subprocess.run(["bash", str(INSTALL)], env=env, capture_output=True, text=True, timeout=60)


def test_too_old_python_is_named(tmp_path):
    old_python = tmp_path / "python3.10"
    old_python.write_text("#!/bin/sh\necho 3.10.14\n")
    old_python.chmod(0o755)
    result = run_install(tmp_path, {"LCP_PYTHON": str(old_python)})
    assert result.returncode != 0
    assert result.stderr.strip() == (
        f"install: error: Python >= 3.11 is required, '{old_python}' is 3.10.14; set LCP_PYTHON to a newer interpreter"
    )
    assert not (tmp_path / "venv").exists()


def test_another_system_than_linux_is_named_before_anything_runs(tmp_path):
    """On a Mac, `make demo` stopped at the script's first line: "realpath: illegal option -- m"."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "uname").write_text("#!/bin/sh\necho Darwin\n")
    (bin_dir / "uname").chmod(0o755)
    result = run_install(tmp_path, {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    assert result.returncode == 1
    assert result.stderr.startswith("install: error: this project sets up on Linux, not Darwin: use a Linux machine")
    assert result.stderr.count("\n") == 1 and not (tmp_path / "venv").exists()


def test_missing_interpreter_is_named(tmp_path):
    result = run_install(tmp_path, {"LCP_PYTHON": str(tmp_path / "no-such-python")})
    assert result.returncode != 0
    assert "no-such-python' not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_compiler_stops_before_any_download(tmp_path):
    # A PATH with every tool of the system except the C/C++ compilers.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in ("/usr/local/bin", "/usr/bin", "/bin"):
        for tool in Path(folder).iterdir():
            name = tool.name
            if name in {"gcc", "g++", "cc", "c++"} or name.startswith(("gcc-", "g++-", "x86_64-linux-gnu-g")):
                continue
            if not (bin_dir / name).exists():
                (bin_dir / name).symlink_to(tool)
    result = run_install(tmp_path, {"PATH": str(bin_dir), "LCP_PYTHON": sys.executable})
    assert result.returncode != 0
    assert "gcc/g++ not found" in result.stderr
    assert "build-essential" in result.stderr
    assert not (tmp_path / "venv").exists()


def stub(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(0o755)
    return path


def pins() -> dict[str, str]:
    lines = (REPO / "scripts/pins.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def cached_wheel(cache: Path, flavour: str) -> Path:
    """A wheel where install.sh looks for its build of mmcv-full (Python 3.11 per the stubs)."""
    folder = cache / f"mmcv-full-{pins()['MMCV']}-cp311-torch{pins()['TORCH']}-{flavour}"
    folder.mkdir(parents=True)
    wheel = folder / f"mmcv_full-{pins()['MMCV']}-cp311-cp311-linux_x86_64.whl"
    wheel.write_bytes(b"")
    return wheel


# An interpreter that is Python 3.11 for install.sh's questions and logs everything else.
FAKE_PYTHON = 'case "$*" in *version_info*) echo 3.11.9 ;; *) echo "python $*" >> "$LOG"; exit 1 ;; esac\n'


def fake_venv_python(venv: Path, mmcv_version: str, compiled_cuda: str) -> Path:
    """A venv (Python 3.11) with pip that logs what it installs and says which mmcv-full it has."""
    (venv / "pyvenv.cfg").parent.mkdir(parents=True, exist_ok=True)
    (venv / "pyvenv.cfg").write_text("version = 3.11.9\n")
    return stub(
        venv / "bin/python",
        f"""case "$*" in
  *version_info*) echo 3.11.9 ;;
  *"-m pip install"*) echo "pip install ${{*:6}}" >> "$LOG" ;;
  *importlib.metadata*) echo {mmcv_version} ;;
  *get_compiling_cuda_version*) echo '{compiled_cuda}' ;;
esac
exit 0
""",
    )


def test_a_cpu_venv_moved_to_cuda_gets_the_cuda_build_of_mmcv(tmp_path):
    """The CPU build of mmcv-full 1.7.2 is 1.7.2 too: a FORCE_CUDA=1 run cached the CUDA wheel,
    installed nothing and wrote its stamp, and the first GPU job failed."""
    log = tmp_path / "log"
    venv = tmp_path / "venv"
    fake_venv_python(venv, pins()["MMCV"], "not available")
    (venv / ".lcp-mmcv-flavour").write_text("cpu\n")
    wheel = cached_wheel(tmp_path / "cache", "cuda-9p0")
    python = stub(tmp_path / "python3", FAKE_PYTHON)
    env = {"LCP_WHEEL_CACHE": str(tmp_path / "cache"), "LOG": str(log), "LCP_PYTHON": str(python)}
    result = run_install(tmp_path, {**env, "FORCE_CUDA": "1", "TORCH_CUDA_ARCH_LIST": "9.0"})
    assert f"pip install --force-reinstall --no-deps {wheel}" in log.read_text()
    assert (venv / ".lcp-mmcv-flavour").read_text().strip() == "cuda-9p0"
    # the stub still reports a CPU build, so the run refuses to call the venv ready
    assert result.returncode != 0
    assert "FORCE_CUDA=1 but the installed mmcv-full has no CUDA ops (compiled CUDA: not available)" in result.stderr
    assert not (venv / ".lcp-installed").exists()


def test_a_half_made_venv_is_re_created(tmp_path):
    """`python3 -m venv` without python3-venv (or interrupted) leaves bin/python without pip;
    every later run skipped creating the venv and died in pip."""
    log = tmp_path / "log"
    venv = tmp_path / "venv"
    stub(venv / "bin/python", "exit 1\n")  # no pip
    (venv / "pyvenv.cfg").write_text("version = 3.11.9\n")
    cached_wheel(tmp_path / "cache", "cpu")
    python = stub(tmp_path / "python3", FAKE_PYTHON)
    result = run_install(
        tmp_path, {"LCP_WHEEL_CACHE": str(tmp_path / "cache"), "LOG": str(log), "LCP_PYTHON": str(python)}
    )
    assert result.returncode != 0
    assert f"python -m venv --clear {venv}" in log.read_text()
    assert "its python or pip does not run (left half-made, or its interpreter is gone)" in result.stderr
    assert result.stderr.strip().endswith(
        f"could not re-create the venv {venv} with '{python}' (on Debian/Ubuntu: apt-get install python3-venv)"
    )


def test_a_folder_that_is_not_a_venv_is_refused_and_kept(tmp_path):
    """A conda prefix or /usr/local given as LCP_VENV whose python has no pip was wiped by
    `python -m venv --clear`."""
    log = tmp_path / "log"
    prefix = tmp_path / "prefix"
    stub(prefix / "bin/python", "exit 1\n")
    (prefix / "work/precious.txt").parent.mkdir()
    (prefix / "work/precious.txt").write_text("data")
    python = stub(tmp_path / "python3", FAKE_PYTHON)
    result = run_install(tmp_path, {"LCP_VENV": str(prefix), "LOG": str(log), "LCP_PYTHON": str(python)})
    assert result.returncode != 0
    assert result.stderr.strip() == (
        f"install: error: {prefix} is not a virtual environment (no pyvenv.cfg) and not empty; "
        "set LCP_VENV to a new folder or remove it"
    )
    assert (prefix / "work/precious.txt").read_text() == "data" and not log.exists()


def test_a_wheel_cache_that_cannot_hold_the_build_stops_before_any_work(tmp_path):
    """It failed after the 10-20 minute compile, and threw the build away."""
    (tmp_path / "a-file").write_text("")
    result = run_install(tmp_path, {"LCP_WHEEL_CACHE": str(tmp_path / "a-file"), "LCP_PYTHON": sys.executable})
    assert result.returncode != 0
    assert result.stderr.strip().startswith(f"install: error: {tmp_path / 'a-file'}/mmcv-full-")
    assert "set LCP_WHEEL_CACHE to a writable folder" in result.stderr
    assert not (tmp_path / "venv").exists()


def cuda_venv(tmp_path: Path, mmcv_version: str, flavour: str) -> tuple[Path, dict[str, str]]:
    """A venv (stubbed) whose mmcv-full build is `flavour`, and the environment that installs into
    it with the wheel cache tmp_path/cache and a log of its pip calls in tmp_path/log."""
    venv = tmp_path / "venv"
    fake_venv_python(venv, mmcv_version, "13.0")
    (venv / ".lcp-mmcv-flavour").write_text(f"{flavour}\n")
    python = stub(tmp_path / "python3", FAKE_PYTHON)
    return venv, {"LCP_WHEEL_CACHE": str(tmp_path / "cache"), "LOG": str(tmp_path / "log"), "LCP_PYTHON": str(python)}


def test_without_force_cuda_a_cuda_venv_keeps_its_cuda_build(tmp_path):
    """`make test` after the README's CUDA install replaced the CUDA build by the CPU one."""
    venv, env = cuda_venv(tmp_path, pins()["MMCV"], "cuda-9p0")
    log = tmp_path / "log"
    cached_wheel(tmp_path / "cache", "cuda-9p0")
    cached_wheel(tmp_path / "cache", "cpu")
    result = run_install(tmp_path, env)
    assert result.returncode == 0, result.stderr
    assert "mmcv_full" not in log.read_text() and "replacing" not in result.stderr
    assert (venv / ".lcp-mmcv-flavour").read_text().strip() == "cuda-9p0"
    result = run_install(tmp_path, {**env, "FORCE_CUDA": "0"})  # asked for: the CPU build
    assert "replacing the installed mmcv-full" in result.stderr and "by its cpu build" in result.stderr


def test_the_makefile_and_the_install_script_use_one_venv(tmp_path):
    """`LCP_VENV=x make demo` set up x, then ran .venv/bin/python, which did not exist."""
    dry = subprocess.run(
        ["make", "-n", "-C", str(REPO), "demo"],
        env={**os.environ, "LCP_VENV": str(tmp_path / "v")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"LCP_VENV={tmp_path / 'v'} bash scripts/install.sh" in dry
    assert f"{tmp_path / 'v'}/bin/python -m snakemake" in dry and ".venv" not in dry


def test_the_conda_post_deploy_step_outside_the_repository_says_what_to_do(tmp_path):
    """Snakemake runs a copy of it in its working directory: it died in bash with 'No such file'."""
    result = subprocess.run(
        ["bash", str(REPO / "envs/lcp.post-deploy.sh")],
        cwd=tmp_path,
        env={**os.environ, "CONDA_PREFIX": str(tmp_path / "env")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"lcp post-deploy: error: {tmp_path} has no scripts/install.sh; run snakemake from the lcp repository "
        "or export LCP_REPO=/path/to/lcp"
    )


def test_a_conda_env_is_installed_into_not_refused(tmp_path):
    """The README's conda route and the workflow's post-deploy step give LCP_VENV=$CONDA_PREFIX."""
    log = tmp_path / "log"
    prefix = tmp_path / "conda-env"
    (prefix / "conda-meta").mkdir(parents=True)
    stub(
        prefix / "bin/python",
        'case "$*" in *version_info*) echo 3.11.9 ;; *"pip install"*) echo "pip $*" >> "$LOG" ;; esac\nexit 0\n',
    )
    cached_wheel(tmp_path / "cache", "cpu")
    python = stub(tmp_path / "python3", FAKE_PYTHON)
    env = {
        "LCP_VENV": str(prefix),
        "LCP_WHEEL_CACHE": str(tmp_path / "cache"),
        "LOG": str(log),
        "LCP_PYTHON": str(python),
    }
    run_install(tmp_path, env)
    assert "-m venv" not in log.read_text() and "pip -m pip install" in log.read_text()
    assert (prefix / "conda-meta").is_dir() and not (prefix / "pyvenv.cfg").exists()


def test_a_cuda_venv_whose_build_is_not_cached_is_not_rebuilt_without_force_cuda(tmp_path):
    """mmcv builds its CUDA ops only when asked: the rebuild had none, and was cached as CUDA."""
    _, env = cuda_venv(tmp_path, "", "cuda-8p0")  # its mmcv-full went missing (a pin bump uninstalls it)
    result = run_install(tmp_path, env)
    assert result.returncode != 0
    assert result.stderr.strip() == (
        "install: error: the venv has mmcv-full's cuda-8p0 build and none is cached to reinstall: run again with "
        "FORCE_CUDA=1 and TORCH_CUDA_ARCH_LIST set (or FORCE_CUDA=0 for the CPU build)"
    )
    assert not (tmp_path / "cache").exists()


def test_a_cuda_venv_with_its_build_installed_needs_no_cached_wheel(tmp_path):
    """A stale stamp (a new install.sh) made every CUDA venv without a cached wheel refuse `make test`."""
    venv, env = cuda_venv(tmp_path, pins()["MMCV"], "cuda-8p0")
    result = run_install(tmp_path, env)
    assert result.returncode == 0, result.stderr
    assert "building mmcv-full" not in result.stderr and "mmcv_full" not in (tmp_path / "log").read_text()
    assert (venv / ".lcp-mmcv-flavour").read_text().strip() == "cuda-8p0"


def test_a_disk_too_full_for_torch_stops_before_any_download(tmp_path):
    """pip failed a minute into torch's 6.5 GB with 'No space left on device' after pages of warnings."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"a small disk (tmpfs) cannot be mounted here: {mounted.stderr.decode().strip()}")
    try:
        venv = disk / "venv"
        (venv / "pyvenv.cfg").parent.mkdir(parents=True)
        (venv / "pyvenv.cfg").write_text("version = 3.11.9\n")
        stub(
            venv / "bin/python",
            'case "$*" in *version_info*) echo 3.11.9 ;; *\'version("torch")\'*) exit 1 ;; '
            '*"-m pip install"*) echo "pip install ${*:6}" >> "$LOG" ;; esac\nexit 0\n',
        )
        cached_wheel(tmp_path / "cache", "cpu")
        env = {"LCP_VENV": str(venv), "LCP_WHEEL_CACHE": str(tmp_path / "cache"), "LOG": str(tmp_path / "log")}
        result = run_install(tmp_path, env)
    finally:
        subprocess.run(["umount", str(disk)], check=True)
    assert result.returncode != 0
    free_mb, rest = result.stderr.strip().removeprefix("install: error: ").split(" ", 1)
    assert 0 < int(free_mb) <= 32, result.stderr
    assert rest == (
        f"MB free on the disk of {venv}, and installing torch {pins()['TORCH']} there needs "
        "about 7 GB: free some space or set LCP_VENV to a folder on another disk"
    )
    assert not (tmp_path / "log").exists()
