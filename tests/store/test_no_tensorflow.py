"""The store, compare and report never import TensorFlow (they serve machines without it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
from tests.store.helpers import bench_result
from tflite_deploy.store import open_store
from tflite_deploy.reporting.compare import compare_runs
from tflite_deploy.reporting.build import build_report
from tflite_deploy.reporting.render import write_html
from tflite_deploy.cli import store as store_cli
with open_store(sys.argv[1]) as st:
    for p50 in (3.0, 3.6):
        run = st.start_run(tag="t")
        st.add_result(run, bench_result(p50=p50))
    assert compare_runs(st, "latest~1", "latest").cells[0].latency.verdict == "slower"
    write_html(build_report(st, ["latest~1", "latest"]), sys.argv[2])
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tf_keras", "keras", "ai_edge_litert"))
print("HEAVY", heavy)
"""


def test_store_compare_and_report_run_without_importing_tensorflow(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "s.db"), str(tmp_path / "r.html")],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "HEAVY []" in r.stdout
    assert (tmp_path / "r.html").stat().st_size > 1000
