"""Artifacts kept by content: every recorded .tflite's bytes stay in the store's blob folder, a
re-measurement uses them (never the file now at the path), and prune removes them by age or tag."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tflite_deploy.cli import app
from tflite_deploy.envelope import items_of
from tflite_deploy.errors import UserError
from tflite_deploy.store import blobs, open_store

runner = CliRunner()
QUICK = ["--runs", "20", "--warmup", "2", "--min-seconds", "0.1"]


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_keep_copies_once_by_content_and_a_later_overwrite_does_not_touch_the_blob(tmp_path: Path) -> None:
    folder = tmp_path / "blobs"
    a = tmp_path / "m.int8.tflite"
    a.write_bytes(b"first bytes")
    sha = blobs.keep(a, folder)
    kept = blobs.blob_path(folder, sha)
    assert sha == _sha(a) and kept.read_bytes() == b"first bytes"
    b = tmp_path / "other" / "m.int8.tflite"
    b.parent.mkdir()
    b.write_bytes(b"first bytes")
    assert blobs.keep(b, folder) == sha and list(blobs.kept(folder)) == [sha]  # deduplicated
    assert not [p for p in folder.rglob("*") if p.name.startswith(".incoming")]  # no temporary left
    with open(a, "r+b") as f:  # `cp new a` writes into the same inode: a hard link would change too
        f.write(b"FIRST")
    assert kept.read_bytes() == b"first bytes"
    assert blobs.recorded_bytes(folder, sha, "x") == kept


def test_recorded_bytes_refuses_when_gone_or_altered(tmp_path: Path) -> None:
    folder = tmp_path / "blobs"
    a = tmp_path / "m.tflite"
    a.write_bytes(b"bytes")
    sha = blobs.keep(a, folder)
    with pytest.raises(UserError, match="base run 1's m.*not in the blob folder"):
        blobs.recorded_bytes(folder, "0" * 64, "base run 1's m")
    with pytest.raises(UserError, match="no sha256 was recorded"):
        blobs.recorded_bytes(folder, None, "m")
    p = blobs.blob_path(folder, sha)
    p.chmod(0o644)
    p.write_bytes(b"other")
    with pytest.raises(UserError, match="altered on disk"):
        blobs.recorded_bytes(folder, sha, "m")


def test_blob_folder_beside_sqlite_else_the_environment_one(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(blobs.BLOBS_ENV, raising=False)
    assert blobs.blob_dir(f"sqlite:///{tmp_path}/runs.db") == tmp_path / "runs.blobs"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert blobs.blob_dir("postgresql+psycopg://u@h/db") == tmp_path / "cache" / "tflite-deploy" / "blobs"
    monkeypatch.setenv(blobs.BLOBS_ENV, str(tmp_path / "shared"))
    assert blobs.blob_dir("postgresql+psycopg://u@h/db") == tmp_path / "shared"


def test_recording_keeps_the_bytes_and_prune_removes_by_age_and_tag(store_url: str, tmp_path: Path,
                                                                     monkeypatch) -> None:
    from tflite_deploy.result import Result

    monkeypatch.setenv(blobs.BLOBS_ENV, str(tmp_path / "blobs"))
    files = {}
    for name in ("old", "nightly", "both"):
        files[name] = tmp_path / f"{name}.float32.tflite"
        files[name].write_bytes(name.encode() * 100)
    with open_store(store_url) as st:
        long_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=40)
        for name, tag, when in (("old", "t", long_ago), ("nightly", "nightly", None), ("both", "nightly", None),
                                ("both", "keep", long_ago)):
            run = st.start_run(tag=tag, started_at=when)
            st.add_result(run, Result(kind="bench", artifact=str(files[name]), artifact_sha256=_sha(files[name])),
                          artifact_id=st.add_artifact_file(files[name]))
        assert set(blobs.kept(tmp_path / "blobs")) == {_sha(f) for f in files.values()}
        with pytest.raises(UserError, match="--older-than and/or --tag"):
            blobs.prune(st)
        dry = blobs.prune(st, older_than=dt.timedelta(days=30), dry_run=True)
        assert dry.removed == (_sha(files["old"]),) and len(blobs.kept(tmp_path / "blobs")) == 3
        # "both" is used by a nightly run and a keep run: pruning the nightly tag keeps it
        assert blobs.prune(st, tag="nightly").removed == (_sha(files["nightly"]),)
        assert blobs.prune(st, older_than=dt.timedelta(days=30)).removed == (_sha(files["old"]),)
    assert set(blobs.kept(tmp_path / "blobs")) == {_sha(files["both"])}


def _compare(store: Path, *extra: str) -> tuple[int, dict]:
    r = runner.invoke(app, ["compare", "a", "c", "--store", str(store), "--json", *extra])
    assert r.exit_code in (0, 1), r.output
    (doc,) = items_of(json.loads(r.stdout), "compare")
    (cell,) = doc["cells"]
    return r.exit_code, cell


def test_replaced_file_is_confirmed_slower_from_the_recorded_bytes(versions: dict, tmp_path: Path) -> None:
    """The base run's path now holds the new model: --confirm measures the bytes each run recorded."""
    store = tmp_path / "runs.db"
    path = tmp_path / "out" / "conv.float32.tflite"
    path.parent.mkdir()
    shutil.copyfile(versions["v1"], path)
    bench = ["bench", str(path), "--repeat", "3", *QUICK, "--store", str(store)]
    assert runner.invoke(app, [*bench, "--tag", "a"]).exit_code == 0
    shutil.copyfile(versions["v2"], path)  # re-made in place: same folder, same name, ~20% more work
    assert runner.invoke(app, [*bench, "--tag", "c"]).exit_code == 0
    code, cell = _compare(store, "--confirm")
    assert (code, cell["verdict"], cell["confirmation"]) == (1, "slower", "confirmed"), cell["latency"]
    assert cell["latency"]["ratio"] > 1.08, cell["latency"]
    # the bytes gone: say so and refuse, rather than measure whatever sits at the path
    shutil.rmtree(tmp_path / "runs.blobs")
    r = runner.invoke(app, ["compare", "a", "c", "--store", str(store), "--confirm"])
    assert r.exit_code != 0 and r.exception is None or isinstance(r.exception, SystemExit), r.output
    assert "recorded bytes" in r.output and "cannot be measured again" in r.output, r.output
    assert "Traceback" not in r.output


def test_store_prune_command(tmp_path: Path, versions: dict) -> None:
    store = tmp_path / "runs.db"
    r = runner.invoke(app, ["bench", str(versions["v1"]), *QUICK, "--store", str(store), "--tag", "x"])
    assert r.exit_code == 0, r.output
    (sha,) = blobs.kept(tmp_path / "runs.blobs")
    assert sha == _sha(versions["v1"])
    r = runner.invoke(app, ["store", "prune", "--store", str(store)])
    assert r.exit_code == 2 and "--older-than" in r.output, r.output
    r = runner.invoke(app, ["store", "prune", "--store", str(store), "--older-than", "1x"])
    assert r.exit_code == 2 and "--older-than" in r.output, r.output
    r = runner.invoke(app, ["store", "prune", "--store", str(store), "--older-than", "30d"])
    assert r.exit_code == 0 and "0 blob(s) removed" in r.output and blobs.kept(tmp_path / "runs.blobs"), r.output
    r = runner.invoke(app, ["store", "prune", "--store", str(store), "--tag", "x", "--json"])
    (doc,) = items_of(json.loads(r.stdout), "store-prune")
    assert r.exit_code == 0 and doc["removed"] == [sha] and not blobs.kept(tmp_path / "runs.blobs"), r.output
