"""One CLI plumbing: errors name the API parameter in Python and the flag on the command line, one
error wrapper (``error:``, ``interrupted`` / 130, no traceback) and one console factory."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import tflite_deploy
from tflite_deploy.cli import app
from tflite_deploy.errors import UserError

runner = CliRunner()


@pytest.fixture
def model(tmp_path: Path) -> Path:
    p = tmp_path / "m.tflite"
    p.write_bytes(b"TFL3" * 16)  # bench refuses the options before it opens the file
    return p


@pytest.mark.parametrize("api_kw, cli_args, flag", [
    (dict(runs=0), ["--runs", "0"], "--runs"),
    (dict(warmup=-1), ["--warmup", "-1"], "--warmup"),
    (dict(repeat=0), ["--repeat", "0"], "--repeat"),
    (dict(threads=0), ["--threads", "0"], "--threads"),
    (dict(timeout=-2.0), ["--timeout", "-2"], "--timeout"),
    (dict(gpu_precision="fp8"), ["--gpu-precision", "fp8"], "--gpu-precision"),
])
def test_bench_errors_name_the_parameter_in_python_and_the_flag_on_the_command_line(model, api_kw, cli_args, flag):
    param = next(iter(api_kw))
    with pytest.raises(UserError) as e:
        tflite_deploy.bench([model], **api_kw)
    assert e.value.param == param
    assert param in str(e.value) and "--" not in str(e.value)
    res = runner.invoke(app, ["bench", str(model), *cli_args])
    assert res.exit_code == 2
    assert f"\nerror: {flag} " in "\n" + res.stderr, res.stderr
    assert "Traceback" not in res.output


def test_other_commands_name_their_own_flags(tmp_path):
    with pytest.raises(UserError, match=r"^min_effect=1\.5 must be a fraction") as e:
        tflite_deploy.compare("1", "2", store=str(tmp_path / "none.db"), min_effect=1.5)
    assert "--" not in str(e.value)
    res = runner.invoke(app, ["compare", "1", "2", "--store", str(tmp_path / "none.db"), "--min-effect", "1.5"])
    assert res.exit_code == 2 and res.stderr.startswith("error: --min-effect 1.5 must be a fraction")

    with pytest.raises(UserError, match=r"^adb_server takes HOST:PORT, not 'nohost'"):
        tflite_deploy.list_devices("nohost")
    res = runner.invoke(app, ["devices", "--adb-server", "nohost"])
    assert res.exit_code == 2 and res.stderr.startswith("error: --adb-server takes HOST:PORT")

    res = runner.invoke(app, ["history", "--store", str(tmp_path / "none.db"), "--until", "yesterday"])
    assert res.exit_code == 2 and "--store" in res.stderr  # no store there: the flag to name another
    res = runner.invoke(app, ["history", "--store", str(tmp_path / "[bold]x.db")])
    assert res.exit_code == 2 and "[bold]x.db" in res.stderr  # a message is text, not Rich markup


def test_a_message_names_the_flag_only_where_the_command_has_one():
    e = UserError("runs must be at least 1, not 0: runs", param="runs")
    assert e.naming("--runs") == "--runs must be at least 1, not 0: runs"
    e = UserError("There is no results store at x: measure with store=x first", param="store")
    assert e.naming("--store") == "There is no results store at x: measure with --store x first"
    assert UserError("pass force=True to compare", param="force").naming("--force") == "pass --force to compare"
    assert UserError("store='x' is not a URL", param="store").naming("--store") == "--store 'x' is not a URL"
    assert UserError("threads!", param=None).naming("--threads") == "threads!"

    import typer

    from tflite_deploy.cli._common import user_errors

    lone = typer.Typer()

    @lone.command()
    @user_errors
    def only(count: int = typer.Option(1, "--count")) -> None:
        raise UserError("runs must be at least 1, not 0.", param="runs")  # an API call with its own parameter

    res = runner.invoke(lone, [])
    assert res.exit_code == 2 and res.stderr == "error: runs must be at least 1, not 0.\n"


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, tmp_path):
    from tflite_deploy import api

    def interrupted(_model):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "inspect_model", interrupted)
    res = runner.invoke(app, ["inspect", str(tmp_path / "m.tflite")])
    assert res.exit_code == 130 and res.stderr == "interrupted\n" and "Traceback" not in res.output


def test_farm_commands_share_the_wording():
    res = runner.invoke(app, ["farm", "worker", "--scheduler", "tcp://127.0.0.1:9"])
    assert res.exit_code == 2 and res.stderr.startswith("error: This worker would have nothing to do")
    assert "--host-slots N" in res.stderr  # the worker's own flag for the API's host_slots


def test_console_off_a_terminal_is_wide_or_columns(monkeypatch):
    from tflite_deploy.cli._common import LOG_WIDTH, console

    monkeypatch.delenv("COLUMNS", raising=False)
    assert not console().is_terminal and console().width == LOG_WIDTH == console(stderr=True).width
    monkeypatch.setenv("COLUMNS", "97")
    assert console().width == 97 and console(stderr=True).width == 97
