"""Every `lcp` command and sub-command renders its --help (argparse formats help lazily, so a
stray '%' or a bad default only shows up when a user asks for help)."""

import argparse

import pytest

from lcp.cli import build_parser


def all_parsers(parser: argparse.ArgumentParser, prefix: str = "lcp"):
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from all_parsers(sub, f"{prefix} {name}")


PARSERS = list(all_parsers(build_parser()))


def test_every_group_is_reachable():
    names = {name for name, _ in PARSERS}
    assert {
        "lcp train",
        "lcp test",
        "lcp infer",
        "lcp data demo",
        "lcp data synth fog",
        "lcp data check",
        "lcp data convert urpc",
        "lcp compare",
        "lcp tracking sync",
    } <= names


@pytest.mark.parametrize("name,parser", PARSERS, ids=[name for name, _ in PARSERS])
def test_help_renders(name, parser):
    text = parser.format_help()
    assert text.startswith(f"usage: {name}")


def options_without_help(parser: argparse.ArgumentParser) -> list[str]:
    return [
        ", ".join(action.option_strings) or action.dest
        for action in parser._actions
        if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) and not action.help
    ]


@pytest.mark.parametrize("name,parser", PARSERS, ids=[name for name, _ in PARSERS])
def test_help_says_what_the_command_does(name, parser):
    """`lcp report metrics --help` was usage and options only: the line listing it was its parent's."""
    assert parser.description, f"`{name}`: no description in its --help"


@pytest.mark.parametrize("name,parser", PARSERS, ids=[name for name, _ in PARSERS])
def test_every_option_and_argument_has_help(name, parser):
    assert options_without_help(parser) == [], f"`{name}`: add help= to these"


def listed_commands(parser: argparse.ArgumentParser) -> set[str]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {choice.dest for choice in action._choices_actions}


def test_lcp_help_lists_user_commands_and_names_the_plumbing_apart():
    parser = build_parser()
    assert listed_commands(parser) == {
        "env",
        "data",
        "train",
        "test",
        "infer",
        "heatmaps",
        "report",
        "compare",
        "tracking",
        "weights",
    }
    text = parser.format_help()
    commands, epilog = text.split("plumbing, run by the workflow's rules")
    assert "workdir" not in commands and "invocation" not in commands
    assert "lcp workdir begin|finish" in epilog and "open-invocation|close-invocation|log-artifacts" in epilog
    tracking = dict(PARSERS)["lcp tracking"]
    assert listed_commands(tracking) == {"sync", "uri", "relocate"}
    # plumbing still runs
    args = parser.parse_args(["workdir", "finish", "work", "--checkpoint", "out.pth"])
    assert (args.command, args.workdir_command, args.checkpoint) == ("workdir", "finish", "out.pth")
    assert parser.parse_args(["tracking", "close-invocation"]).status == "FINISHED"


def test_data_convert_help_speaks_to_users():
    text = dict(PARSERS)["lcp data convert"].format_help()
    assert "lcp/cli.py" not in text and "lcp data convert FORMAT --help" in text


@pytest.mark.parametrize("name, parser", PARSERS, ids=[name for name, _ in PARSERS])
def test_no_command_takes_an_abbreviated_option(name, parser):
    """argparse took `--max-erased-shar` for --max-erased-share: a workflow config's misspelt
    option ran silently as another."""
    assert parser.allow_abbrev is False, name


def test_an_abbreviated_option_is_refused(tmp_path, capsys):
    from lcp.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["data", "check", "--lowq", str(tmp_path), "--max-erased-shar", "0.2"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --max-erased-shar 0.2" in capsys.readouterr().err


def test_version_prints_the_package_version(capsys):
    from importlib.metadata import version

    from lcp.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"lcp {version('lcp')}"


def test_a_misspelt_option_is_refused_by_its_sub_command_with_the_closest_option(tmp_path, capsys):
    from lcp.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["data", "check", "--lowq", str(tmp_path), "--worker", "2"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: lcp data check ")
    assert "lcp data check: error: unrecognized arguments: --worker 2 (did you mean --workers?)" in err


def test_a_misspelt_command_gets_the_closest_one(capsys):
    from lcp.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["trian"])
    assert exit_info.value.code == 2
    assert "did you mean 'train'?" in capsys.readouterr().err


def test_output_into_a_closed_pipe_ends_quietly(tmp_path):
    """`lcp tracking uri | head -0`: the reader is gone before lcp writes; no traceback."""
    import os
    import subprocess
    import sys

    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "lcp.cli", "tracking", "uri", "--tracking-uri", f"sqlite:///{tmp_path}/m.db"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
    assert done.returncode == 141


def test_ctrl_c_while_the_detector_libraries_import_is_one_line(monkeypatch, capsys):
    import lcp.deferred_imports
    from lcp.cli import main

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(lcp.deferred_imports, "import_mmdet", interrupted)
    try:
        status = main(["train", "config.py"])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C while mmdet imports escaped lcp as a traceback")
    assert status == 130
    assert capsys.readouterr().err == "lcp train: interrupted (Ctrl-C); nothing unfinished was published\n"


def test_a_misspelt_option_of_lcp_itself_is_refused_by_lcp(capsys):
    """`lcp --verison tracking uri` was refused by `lcp tracking uri`, which has no such option."""
    from lcp.cli import main

    with pytest.raises(SystemExit):
        main(["--verison", "tracking", "uri"])
    err = capsys.readouterr().err
    assert err.startswith("usage: lcp [-h]") and "(did you mean --version?)" in err, err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["qqqqzz"], "lcp: error: argument COMMAND: invalid choice: 'qqqqzz' (choose from 'env', "),
        (
            ["test", "c.py", "c.pth", "--workers", "two"],
            "lcp test: error: argument --workers: not a whole number: 'two'",
        ),
        (
            ["data", "convert", "coco", "i", "o", "--ann", "a.json", "--rename", "car"],
            "lcp data convert coco: error: argument --rename: expected OLD=NEW, got 'car'",
        ),
        (["data", "convert", "voc", "s", "o", "--classes", "car,,bus"], "empty class name in 'car,,bus'"),
        (["data", "convert", "voc", "s", "o", "--classes", "car,bus,car"], "class listed twice: car"),
        (["data", "convert", "folder", "s", "o", "--test-fraction", "1.5"], "must be between 0 and 1, got 1.5"),
    ],
)
def test_a_bad_value_is_refused_by_its_command_before_anything_runs(tmp_path, monkeypatch, capsys, argv, message):
    from lcp.cli import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
