"""The convention every command shares: one `error:` line and status 2 for the library's errors and argparse's,
`--debug` for the traceback, status 3 and one `interrupted:` line for a signal or a preempted run, SIGTERM handled
only while the command runs, numeric flag types checked while parsing."""

import argparse
import os
import signal
import threading

import flopcli
import pytest


def _parser() -> flopcli.ArgumentParser:
    parser = flopcli.ArgumentParser(prog="tool", description="A tool.\n\n    tool --steps 3")
    parser.add_argument("--steps", type=flopcli.positive_int, default=1)
    parser.add_argument("--lr", type=flopcli.positive_float, default=1.0)
    parser.add_argument("--ratio", type=flopcli.fraction, default=0.5)
    parser.add_argument("--seed", type=flopcli.non_negative_int, default=0)
    parser.add_argument("--wd", type=flopcli.non_negative_float, default=0.0)
    return parser


def _raises(error: BaseException):
    def body(args: argparse.Namespace) -> int:
        raise error

    return body


def _one_error_line(capsys, expected: str) -> str:
    err = capsys.readouterr().err
    assert err == f"error: {expected}\n", err
    return err


@pytest.mark.parametrize("error", [ValueError("--steps 3: too few"), TypeError("--steps 3: too few"),
                                   FileNotFoundError("--steps 3: too few"), PermissionError("--steps 3: too few"),
                                   flopcli.CommandError("--steps 3: too few")])
def test_library_errors_are_one_line_and_status_2(capsys, error):
    assert flopcli.run(_parser(), _raises(error), []) == flopcli.EXIT_USAGE == 2
    _one_error_line(capsys, "--steps 3: too few")


def test_multi_line_messages_become_one_line_and_extra_error_types_count(capsys):
    class Diverged(RuntimeError):
        pass

    assert flopcli.run(_parser(), _raises(ValueError("first\n  second")), []) == 2
    _one_error_line(capsys, "first second")
    assert flopcli.run(_parser(), _raises(Diverged("loss is nan at step 3")), [], errors=(Diverged,)) == 2
    _one_error_line(capsys, "loss is nan at step 3")
    with pytest.raises(Diverged):  # not declared: a bug keeps its traceback
        flopcli.run(_parser(), _raises(Diverged("x")), [])


def test_debug_shows_the_traceback_and_keeps_the_status(capsys):
    assert flopcli.run(_parser(), _raises(ValueError("bad --steps")), ["--debug"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and err.endswith("\nerror: bad --steps\n")
    assert "ValueError: bad --steps" in err


@pytest.mark.parametrize(("argv", "message"), [
    (["--steps", "0"], "argument --steps: expected an integer >= 1, got '0'"),
    (["--steps", "2.5"], "argument --steps: expected an integer >= 1, got '2.5'"),
    (["--lr=-1e-3"], "argument --lr: expected a number > 0, got '-1e-3'"),
    (["--lr", "nan"], "argument --lr: expected a number > 0, got 'nan'"),
    (["--ratio", "1.5"], "argument --ratio: expected a fraction in (0, 1], got '1.5'"),
    (["--seed", "-1"], "argument --seed: expected an integer >= 0, got '-1'"),
    (["--wd", "inf"], "argument --wd: expected a number >= 0, got 'inf'"),
    (["--stpes", "3"], "unrecognized arguments: --stpes 3"),
    (["--steps"], "argument --steps: expected one argument"),
])
def test_usage_errors_are_one_line_without_the_usage_block(capsys, argv, message):
    called = []
    assert flopcli.run(_parser(), called.append, argv) == 2
    _one_error_line(capsys, message)
    assert not called  # nothing ran


def test_valid_flags_reach_the_body_and_help_exits_0(capsys):
    seen = []
    assert flopcli.run(_parser(), seen.append, ["--steps", "3", "--ratio", "1", "--wd", "0"]) == 0
    assert (seen[0].steps, seen[0].ratio, seen[0].wd, seen[0].debug) == (3, 1.0, 0.0, False)
    assert flopcli.run(_parser(), seen.append, ["--help"]) == 0
    out = capsys.readouterr().out
    assert "    tool --steps 3" in out and "--debug" in out  # description layout kept; --debug offered


def test_unknown_arguments_can_be_kept_for_the_body():
    seen = []
    assert flopcli.run(_parser(), seen.append, ["--config.a=1", "--steps", "2"], unknown_into="overrides") == 0
    assert (seen[0].overrides, seen[0].steps) == (["--config.a=1"], 2)


def test_a_preempted_command_says_how_to_continue_with_status_3(capsys):
    stop = flopcli.Interrupted("stopped at step 40 (checkpoint saved); continue it with --resume")
    assert flopcli.run(_parser(), _raises(stop), []) == flopcli.EXIT_INTERRUPTED == 3
    assert capsys.readouterr().err == "interrupted: stopped at step 40 (checkpoint saved); continue it with --resume\n"


def test_sigterm_while_running_is_an_interrupt_and_the_handler_is_restored(capsys):
    before = signal.getsignal(signal.SIGTERM)
    reached = []

    def body(args: argparse.Namespace) -> int:
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGTERM)).start()
        threading.Event().wait(30)  # interrupted long before
        reached.append("end")
        return 0

    assert flopcli.run(_parser(), body, []) == 3
    assert not reached
    assert capsys.readouterr().err == ("interrupted: stopped by SIGTERM before finishing; what was saved is kept: "
                                       "run the same command again to resume\n")
    assert signal.getsignal(signal.SIGTERM) is before


def test_about_names_the_flag_once():
    with pytest.raises(flopcli.CommandError, match=r"^--dataset: dataset 'x' is not built$"):
        with flopcli.about("--dataset"):
            raise ValueError("dataset 'x' is not built")
    with pytest.raises(ValueError, match=r"^--budget '3x': expected FLOPs$"):
        with flopcli.about("--budget"):
            raise ValueError("--budget '3x': expected FLOPs")
    with pytest.raises(KeyError):  # not an input error: untouched
        with flopcli.about("--dataset"):
            raise KeyError("x")


# ------------------------------------------------------------------------------------------- user code
def test_user_code_names_the_code_and_the_exception_and_keeps_the_cause():
    with pytest.raises(flopcli.UserCodeError) as caught:
        with flopcli.user_code("--config c.py: get_config()"):
            {}["missing"]
    assert str(caught.value) == "--config c.py: get_config() raised KeyError: 'missing'"
    assert isinstance(caught.value, ValueError) and isinstance(caught.value.__cause__, KeyError)
    with pytest.raises(flopcli.UserCodeError, match=r"^m raised AssertionError$"):  # no message: the type alone
        with flopcli.user_code("m"):
            raise AssertionError
    inner = flopcli.UserCodeError("inner raised X")
    with pytest.raises(flopcli.UserCodeError) as caught:  # user code calling user code: not wrapped twice
        with flopcli.user_code("outer"):
            raise inner
    assert caught.value is inner
    with pytest.raises(KeyboardInterrupt):
        with flopcli.user_code("m"):
            raise KeyboardInterrupt


def test_user_code_error_is_one_line_and_debug_shows_the_original(capsys):
    def body(args):
        with flopcli.user_code("method pkg:Cls: building it"):
            raise RuntimeError("deep\nfailure")

    assert flopcli.run(flopcli.ArgumentParser(), body, []) == 2
    assert capsys.readouterr().err == "error: method pkg:Cls: building it raised RuntimeError: deep failure\n"
    assert flopcli.run(flopcli.ArgumentParser(), body, ["--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and 'raise RuntimeError("deep' in err and err.endswith("deep failure\n")


def test_debug_shows_the_cause_of_a_flag_type_error(capsys):
    def kind(text):
        try:
            raise RuntimeError(f"user module failed on {text}")
        except RuntimeError as error:
            raise argparse.ArgumentTypeError(f"bad {text}") from error

    parser = flopcli.ArgumentParser()
    parser.add_argument("--method", type=kind)
    assert flopcli.run(parser, lambda args: 0, ["--method", "x"]) == 2
    assert capsys.readouterr().err == "error: argument --method: bad x\n"
    assert flopcli.run(parser, lambda args: 0, ["--method", "x", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "user module failed on x" in err and err.splitlines()[-1] == "error: argument --method: bad x"
