"""The results store against SQLite and a real PostgreSQL server: write, read back, migrate, refuse."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.store.helpers import bench_result, eval_result
from tflite_deploy.result import Result
from tflite_deploy.store import StoreError, open_store, record_results
from tflite_deploy.store.engine import head_revision
from tflite_deploy.store.query import history, parse_time


def test_results_round_trip_whole_and_headline_columns(store_url: str) -> None:
    r = bench_result(p50=3.3, repeats=[3.2, 3.3, 3.4])
    e = eval_result(top1=96.5, drop=0.8)
    with open_store(store_url) as st:
        run = st.start_run(tag="nightly", argv=["tflite-deploy", "bench", "a.tflite"])
        ids = [st.add_result(run, r), st.add_result(run, e)]
        assert ids[1] > ids[0]
        back = st.results(run_id=run)
        rows = history(st, run_id=run)
    assert [b.to_dict() for b in back] == [r.to_dict(), e.to_dict()]  # raw samples and log kept
    assert back[0].latency.samples_ms == r.latency.samples_ms and back[0].raw_log == "INFO: timings ..."
    bench, ev = rows
    assert (bench["model"], bench["recipe"], bench["target"], bench["delegate"]) == ("net", "int8", "host", "xnnpack")
    assert bench["p50_ms"] == pytest.approx(3.3) and bench["init_ms"] == 12.5 and bench["peak_memory_mb"] == 80.0
    assert ev["accuracy_top1"] == 96.5 and ev["accuracy_drop"] == 0.8 and ev["p50_ms"] is None
    assert bench["tag"] == "nightly"


def test_run_records_command_line_host_versions_and_git(store_url: str, tmp_path: Path) -> None:
    repo_root = Path(__file__).resolve().parents[2]
    with open_store(store_url) as st:
        a = st.start_run(tag="t", argv=["tflite-deploy", "bench", "x y.tflite"], cwd=repo_root)
        b = st.start_run(argv=[], cwd=tmp_path)
        ra, rb = st.run(a), st.run(b)
    assert ra["argv"] == ["tflite-deploy", "bench", "x y.tflite"]
    assert ra["git_commit"] and len(ra["git_commit"].split("-")[0]) == 40  # this checkout's commit
    assert rb["git_commit"] is None  # not a git folder
    assert ra["host"]["cpu_count"] >= 1 and "python" in ra["host"]
    assert "tflite-deploy" in ra["versions"]
    assert ra["started_at"].tzinfo is not None


def test_history_filters_and_run_references(store_url: str) -> None:
    t0 = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    with open_store(store_url) as st:
        r1 = st.start_run(tag="nightly", started_at=t0)
        st.add_result(r1, bench_result("a", "int8"))
        st.add_result(r1, bench_result("a", "float32", delegate="none"))
        r2 = st.start_run(tag="nightly", started_at=t0 + dt.timedelta(days=1))
        st.add_result(r2, bench_result("a", "int8", target="adb:PIXEL"))
        st.add_result(r2, bench_result("b", "int8"))
        r3 = st.start_run(tag="release-1.2", started_at=t0 + dt.timedelta(days=2))
        st.add_result(r3, eval_result("b", "int8"))

        def keys(**kw: object) -> list:
            return [(r["run_id"], r["model"], r["recipe"]) for r in history(st, with_document=False, **kw)]

        assert keys(model="a") == [(r1, "a", "int8"), (r1, "a", "float32"), (r2, "a", "int8")]
        assert keys(recipe="float32") == [(r1, "a", "float32")]
        assert keys(target="adb:PIXEL") == [(r2, "a", "int8")]
        assert keys(delegate="none") == [(r1, "a", "float32")]
        assert keys(tag="release-1.2") == [(r3, "b", "int8")]
        assert keys(since=t0 + dt.timedelta(hours=12), until=t0 + dt.timedelta(hours=36)) == [(r2, "a", "int8"), (r2, "b", "int8")]
        assert keys(kind="eval") == [(r3, "b", "int8")]
        assert st.resolve_run("latest") == r3 and st.resolve_run("latest~1") == r2
        assert st.resolve_run("nightly") == r2 and st.resolve_run(str(r1)) == r1
        with pytest.raises(StoreError, match="no run tagged 'weekly'.*nightly"):
            st.resolve_run("weekly")
        with pytest.raises(StoreError, match="no run 999"):
            st.resolve_run("999")
        assert st.count_results() == 5 and st.count_results(r2) == 2


def test_parse_time_accepts_dates_and_relative_spans() -> None:
    assert parse_time("2026-11-02", "--since") == dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc)
    assert dt.datetime.now(dt.timezone.utc) - parse_time("7d", "--since") > dt.timedelta(days=6.9)
    with pytest.raises(StoreError, match="--until 'yesterday' is not a date"):
        parse_time("yesterday", "--until")


def _artifact(folder: Path, model: str = "net", recipe: str = "int8", data: bytes = b"TFL3" * 100) -> Path:
    from tflite_deploy.artifact import save_artifact

    art = save_artifact(folder, model, recipe, data, {"source": {"sha256": "ab" * 32}}, 0.1)
    return art.path


def test_artifacts_take_sidecar_facts_once_and_sizes_reach_history(store_url: str, tmp_path: Path) -> None:
    path = _artifact(tmp_path)
    r = Result(kind="bench", artifact=str(path), recipe="int8", latency=bench_result().latency)
    with open_store(store_url) as st:
        a1 = st.add_artifact_file(path)
        assert st.add_artifact_file(path) == a1  # same bytes and path: one row
    run = record_results(store_url, "ci", ["tflite-deploy", "bench"], [r], [path])
    with open_store(store_url) as st:
        row, = history(st, run_id=run, with_document=False)
        with st.engine.connect() as conn:
            art = conn.execute(sa.text("select * from artifacts")).mappings().one()
    assert row["size_bytes"] == 400 and row["gzip_bytes"] > 0
    assert art["recipe"] == "int8" and art["model"] == "net" and art["source_sha256"] == "ab" * 32
    assert art["sha256"] == hashlib.sha256(b"TFL3" * 100).hexdigest()


def test_schema_built_by_migrations_matches_the_tables_the_code_uses(store_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from tflite_deploy.store.schema import metadata

    with open_store(store_url) as st, st.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert st.revision == head_revision()
    assert diff == []


def test_old_schema_store_is_migrated_and_its_rows_filled_in(store_url: str) -> None:
    old = open_store(store_url, upgrade_to="0001")
    assert old.revision == "0001"
    with old.engine.connect() as conn:
        assert "accuracy_top1" not in {c["name"] for c in sa.inspect(conn).get_columns("results")}
    run = old.start_run(tag="old")
    doc = eval_result(top1=91.0, drop=2.5).to_dict()
    with old.engine.begin() as conn:  # a row as the 0001 code wrote it
        conn.execute(sa.text("insert into results (run_id, created_at, kind, artifact, model, recipe, target, "
                             "delegate, status, document) values (:r, :t, 'eval', 'out/net.int8.tflite', 'net', "
                             "'int8', 'host', 'xnnpack', 'ok', :d)"),
                     {"r": run, "t": dt.datetime.now(dt.timezone.utc), "d": json.dumps(doc)})
    old.close()
    with open_store(store_url) as st:
        assert st.revision == head_revision() != "0001"
        row, = history(st, run_id=run)
    assert row["accuracy_top1"] == 91.0 and row["accuracy_drop"] == 2.5
    assert Result.from_dict(row["document"]).metrics["top1"] == 91.0


def test_store_at_0002_gains_the_device_lease_table_and_keeps_its_rows(store_url: str) -> None:
    from tflite_deploy.store.leases import LeaseRows

    old = open_store(store_url, upgrade_to="0002")
    with old.engine.connect() as conn:
        assert "device_leases" not in sa.inspect(conn).get_table_names()
    old.add_result(old.start_run(tag="before-leases"), bench_result())
    old.close()
    with open_store(store_url) as st:
        assert st.revision == head_revision() == "0003"
        assert [r.status for r in st.results()] == ["ok"] and st.count_results() == 1
        rows = LeaseRows(st)
        lease = {"serial": "R58M", "holder": "farm run 2", "token": "a" * 32, "hostname": "h", "pid": 1,
                 "expires": 1.5e9, "acquired_at": 1.5e9}
        assert rows.insert(lease) and not rows.insert({**lease, "token": "b" * 32})  # one row per phone
        assert rows.get("R58M") == lease


def _fingerprint(store_url: str) -> object:
    """What a refused store holds: file bytes (SQLite) or its schema and version (PostgreSQL)."""
    if "://" not in store_url:
        return hashlib.sha256(Path(store_url).read_bytes()).hexdigest()
    eng = sa.create_engine(store_url)
    with eng.connect() as conn:
        tables = sorted(sa.inspect(conn).get_table_names())
        version = conn.execute(sa.text("select version_num from alembic_version")).scalar() if "alembic_version" in tables else None
        count = conn.execute(sa.text("select count(*) from results")).scalar() if "results" in tables else None
    eng.dispose()
    return tables, version, count


def test_newer_store_is_refused_and_left_unchanged(store_url: str) -> None:
    with open_store(store_url) as st:
        st.add_result(st.start_run(), bench_result())
        with st.engine.begin() as conn:
            conn.execute(sa.text("update alembic_version set version_num = '0099_future'"))
    before = _fingerprint(store_url)
    with pytest.raises(StoreError, match=r"schema version '0099_future', newer than this tflite-deploy.*Nothing in it was changed"):
        open_store(store_url)
    assert _fingerprint(store_url) == before


def test_foreign_database_is_refused_and_left_unchanged(store_url: str) -> None:
    eng = sa.create_engine(store_url if "://" in store_url else f"sqlite:///{store_url}")
    with eng.begin() as conn:
        conn.execute(sa.text("create table invoices (id integer primary key, total real)"))
        conn.execute(sa.text("insert into invoices values (1, 9.5)"))
    eng.dispose()
    before = _fingerprint(store_url)
    with pytest.raises(StoreError, match="not a tflite-deploy results store.*invoices"):
        open_store(store_url)
    assert _fingerprint(store_url) == before


def test_text_file_and_bad_locations_are_refused_by_name(tmp_path: Path) -> None:
    notes = tmp_path / "notes.db"
    notes.write_text("these are my notes, not a database\n" * 50)
    before = notes.read_bytes()
    with pytest.raises(StoreError, match=f"{notes} is not a tflite-deploy results store"):
        open_store(notes)
    assert notes.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]  # no -wal/-shm left beside it
    with pytest.raises(StoreError, match="does not exist"):
        open_store(tmp_path / "missing" / "s.db")
    with pytest.raises(StoreError, match="Cannot open results store"):
        open_store("postgresql+psycopg://nobody@127.0.0.1:1/none")


def test_default_location_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tflite_deploy.store import resolve_store_url

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TFLITE_DEPLOY_STORE", raising=False)
    assert resolve_store_url() == f"sqlite:///{tmp_path / 'tflite-deploy.db'}"
    monkeypatch.setenv("TFLITE_DEPLOY_STORE", "elsewhere.db")
    assert resolve_store_url() == f"sqlite:///{tmp_path / 'elsewhere.db'}"
    assert resolve_store_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    with open_store() as st:
        assert st.engine.dialect.name == "sqlite"
        with st.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert (tmp_path / "elsewhere.db").is_file()


def test_result_to_dict_matches_asdict_with_nan_as_null() -> None:
    """Result.to_dict walks fields itself (speed); it must say exactly what dataclasses.asdict says."""
    import dataclasses

    for r in (bench_result(repeats=[1.0, 2.0]), eval_result(),
              Result(kind="bench", artifact="x", init_ms=float("nan"), warnings=("w",))):
        ref = json.loads(json.dumps(dataclasses.asdict(r)).replace("NaN", "null"))
        assert r.to_dict() == ref
        assert Result.from_dict(r.to_dict()) == r if r.init_ms == r.init_ms else True
