"""`farm worker`: its options, its refusals, and phones found by the discovery callable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tflite_deploy.errors import UserError
from tflite_deploy.cli import farm as cli
from tflite_deploy.farm.scheduler import local_cluster, start_worker

REPO = Path(__file__).resolve().parents[1]


def app_with_farm(discover=lambda: []) -> typer.Typer:
    app = typer.Typer()
    cli.register(app, discover=discover)
    return app


def test_worker_with_nothing_to_offer_is_refused() -> None:
    with pytest.raises(UserError, match="no phone attached"):
        start_worker("tcp://127.0.0.1:9", [], discover=lambda: [], host_slots=0)
    res = CliRunner().invoke(app_with_farm(), ["farm", "worker", "--scheduler", "tcp://127.0.0.1:9"])
    assert res.exit_code == 2 and "no phone attached" in res.output and "Traceback" not in res.output


def test_tls_address_needs_certificates_and_certificates_need_tls(tmp_path: Path) -> None:
    res = CliRunner().invoke(app_with_farm(), ["farm", "worker", "--scheduler", "tls://10.0.0.1:8786", "--phone", "A"])
    assert res.exit_code == 2 and "needs --tls-ca" in res.output
    res = CliRunner().invoke(app_with_farm(), ["farm", "worker", "--scheduler", "tcp://h:1", "--phone", "A",
                                               "--tls-ca", str(tmp_path / "ca.pem")])
    assert res.exit_code == 2 and "all three" in res.output
    res = CliRunner().invoke(app_with_farm(), ["farm", "worker", "--scheduler", "tls://h:1", "--phone", "A",
                                               "--tls-ca", "x.pem", "--tls-cert", "y.pem", "--tls-key", "z.pem"])
    assert res.exit_code == 2 and "not found" in res.output and "x.pem" in res.output


def test_worker_offers_discovered_phones() -> None:
    from distributed import Client

    from tflite_deploy.farm.scheduler import offered_resources

    code = ("import sys; from tflite_deploy.farm.scheduler import start_worker; "
            "start_worker(sys.argv[1], discover=lambda: ['D1', 'emulator-5554'], host_slots=2)")
    with local_cluster(host_slots=0) as cluster, Client(cluster) as client:
        p = subprocess.Popen([sys.executable, "-c", code, cluster.scheduler_address], cwd=REPO,
                             env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.DEVNULL)
        try:
            client.wait_for_workers(3, timeout=60)  # one per phone, one for host cells
            assert offered_resources(client) == {"phone-D1": 1, "phone-emulator-5554": 1, "host": 2}
        finally:
            p.terminate()
            p.wait(10)


def test_off_a_terminal_each_finished_cell_is_one_log_line() -> None:
    """cron and CI keep `farm nightly`'s output in a log: one timestamped line per cell, with why it failed."""
    import io
    import re

    from rich.console import Console

    from tflite_deploy.render import farm as view
    from tflite_deploy.farm.record import CellRecord
    from tflite_deploy.progress import ProgressEvent

    buf = io.StringIO()
    console = Console(file=buf, width=200)
    assert not console.is_terminal
    with view.device_rows(console) as show:
        show(ProgressEvent("adb:P1", 0, 2, "waiting"))
        show(ProgressEvent("adb:P1", 1, 2, "ok", CellRecord("bench/m/int8/adb:P1", "bench", "ok", seconds=3.25,
                                                            attempts=2, target="adb:P1")))
        show(ProgressEvent("adb:P1", 2, 2, "failed", CellRecord("bench/m/f16/adb:P1", "bench", "failed",
                                                                error="phone P1 stopped answering", seconds=21.0)))
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2
    assert re.fullmatch(r"\d\d:\d\d:\d\d adb:P1 1/2 ok bench/m/int8/adb:P1 \(3\.2 s after 2 attempts\)", lines[0])
    assert lines[1].endswith("adb:P1 2/2 failed bench/m/f16/adb:P1 (21.0 s): phone P1 stopped answering")
