"""Progress in job logs: whole lines, no carriage returns, where the stream is no terminal
(lcp.progress, and mmcv's ProgressBar as mmdet's evaluation during training uses it)."""

from __future__ import annotations

import contextlib
import io
import re

import pytest
import torch

from lcp.progress import ProgressLines, progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_progress_is_whole_lines_ending_with_the_total():
    out = io.StringIO()
    assert list(progress(range(25), desc="convert lowq", file=out)) == list(range(25))
    text = out.getvalue()
    assert "\r" not in text and text.endswith("\n")
    assert re.fullmatch(r"convert lowq: 25/25 img \(100%\), [\d.]+ img/s, elapsed \d+ s", text.splitlines()[-1])


def test_lines_count_the_work_and_give_an_eta_until_the_end():
    out = io.StringIO()
    lines = ProgressLines(4, "evaluation", "img", out, interval=0)
    for _ in range(4):
        lines.update()
    written = out.getvalue().splitlines()
    assert [line.split(" ")[1] for line in written] == ["1/4", "2/4", "3/4", "4/4"]
    assert all("ETA" in line for line in written[:3]) and "ETA" not in written[3]


def test_a_long_run_s_line_counts_minutes_and_hours():
    lines = ProgressLines(4, "synth", "img", io.StringIO())
    lines.done = 1
    assert lines.line(59.6).endswith("elapsed 1 min 0 s, ETA 2 min 59 s")
    assert lines.line(3725).endswith("elapsed 1 h 2 min, ETA 3 h 6 min")


def test_on_a_terminal_it_is_tqdms_bar():
    out = Terminal()
    list(progress(range(3), desc="infer", unit="image", file=out))
    assert "\r" in out.getvalue() and "infer" in out.getvalue()


class Nothing(torch.nn.Module):
    def forward(self, return_loss=False, rescale=True, x=None):
        return [0] * len(x)


def test_mmdets_evaluation_writes_lines_in_a_log():
    from mmdet.apis import single_gpu_test

    from lcp.apis.compat import progress_lines_in_mmcv_progress_bar

    progress_lines_in_mmcv_progress_bar()
    progress_lines_in_mmcv_progress_bar()  # idempotent
    loader = torch.utils.data.DataLoader([{"x": torch.zeros(1)}] * 3, batch_size=1)
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        assert single_gpu_test(Nothing(), loader) == [0, 0, 0]
    assert "\r" not in log.getvalue()
    assert log.getvalue().splitlines()[-1].startswith("evaluation: 3/3 img (100%)")
    terminal = Terminal()
    with contextlib.redirect_stdout(terminal):
        single_gpu_test(Nothing(), loader)
    assert "\r[" in terminal.getvalue()  # mmcv's own bar on a terminal


_OFFSET = 0


def _set_offset(offset: int) -> None:
    global _OFFSET
    _OFFSET = offset


def _offset_pid(item: int) -> tuple[int, int]:
    import os

    return item + _OFFSET, os.getpid()


def test_map_with_progress_keeps_input_order_in_a_pool_and_runs_the_initializer_everywhere():
    import os

    from lcp.progress import map_with_progress

    for workers in (1, 3):
        out = io.StringIO()
        with contextlib.redirect_stderr(out):
            results = map_with_progress(
                _offset_pid,
                list(range(40)),
                workers,
                "check",
                "pair",
                initializer=_set_offset,
                initargs=(100 * workers,),
            )
        assert [value for value, _ in results] == [100 * workers + i for i in range(40)]
        pids = {pid for _, pid in results}
        assert (pids == {os.getpid()}) if workers == 1 else (os.getpid() not in pids)
        assert out.getvalue().splitlines()[-1].startswith("check: 40/40 pair (100%)")
    quiet = io.StringIO()
    with contextlib.redirect_stderr(quiet):
        map_with_progress(_offset_pid, [1, 2], 2, "check", show=False)
    assert quiet.getvalue() == ""


def test_a_worker_killed_mid_map_stops_it_with_one_error_instead_of_a_hang():
    # in a child process with a time limit: the old multiprocessing.Pool waited forever here
    import subprocess
    import sys
    from pathlib import Path

    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r}); "
        "from helpers.workers import double_or_die; from lcp.progress import map_with_progress; "
        "from lcp.errors import LCPError\n"
        "try:\n    map_with_progress(double_or_die, list(range(8)), 2, 'convert photos', show=False)\n"
        "except LCPError as error:\n    print(error)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("convert photos: a worker process died (killed, or out of memory?)")


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_a_pool_maps_under_every_start_method(method):
    """A worker that ends with its parent checked that its parent was lcp: under forkserver
    (Python 3.14's default) its parent is the server, and every worker exited at its start."""
    import subprocess
    import sys

    script = (
        "import multiprocessing\nfrom lcp.progress import map_with_progress\n"
        "if __name__ == '__main__':\n"
        f"    multiprocessing.set_start_method({method!r})\n"
        "    print(map_with_progress(abs, [-1, -2, -3, -4], 2, 'abs', show=False))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "[1, 2, 3, 4]", result.stderr[-2000:]


def test_the_rate_and_the_eta_are_computed_from_the_work_done():
    lines = ProgressLines(4, "evaluation", "img", io.StringIO())
    lines.done = 1
    assert lines.line(2.0) == "evaluation: 1/4 img (25%), 0.5 img/s, elapsed 2 s, ETA 6 s"
    lines.done = 4
    assert lines.line(8.0) == "evaluation: 4/4 img (100%), 0.5 img/s, elapsed 8 s"
