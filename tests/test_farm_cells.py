"""Farm cells: the plan expanded into convert / eval / bench cells with stable ids, cache and resume."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tflite_deploy.farm.cells import ArtifactCache, expand, pending, phone_resource
from tflite_deploy.farm.plan import TargetSpec, load_plan

VERSIONS = {"tensorflow": "2.21.0", "tflite-deploy": "0.1.0"}


def make_plan(tmp: Path, extra: str = "", recipes: str = "[float32, int8, float16]",
              targets: str = "[host, adb:A]"):
    (tmp / "m1.keras").write_bytes(b"model one")
    (tmp / "m2.keras").write_bytes(b"model two")
    p = tmp / "plan.yaml"
    p.write_text(textwrap.dedent(f"""
        models:
          m1: {{path: m1.keras, dataset: digits}}
          m2: m2.keras
        recipes: {recipes}
        targets: {targets}
        delegates: [xnnpack, gpu]
        cache: cache
        """) + extra)
    return load_plan(p)


def targets(plan):
    return [t for t in plan.targets]


def test_expand_counts_ids_and_resources(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, "threads: [1, 2]\n")
    st = expand(plan, targets(plan), versions=VERSIONS)
    assert len(st.convert) == 6  # 2 models × 3 recipes
    assert len(st.eval) == 3  # only m1 names a dataset
    # host takes xnnpack only; the phone takes both: (1 + 2) delegates × 2 threads × 6 artifacts
    assert len(st.bench) == 6 * 3 * 2
    assert any("host × gpu" in s for s in st.skipped)
    ids = [c.cell_id for c in st.cells]
    assert len(set(ids)) == len(ids)
    conv = st.convert[0]
    assert conv.cell_id.startswith("convert/m1/float32@") and conv.isolate and conv.resource == "host"
    phone = [c for c in st.bench if c.target == "adb:A"]
    assert all(c.resource == phone_resource("A") == "phone-A" and not c.isolate for c in phone)
    assert all(c.needs == (f"convert/{c.model.name}/{c.recipe.name}@{c.key[:12]}",) for c in st.bench + st.eval)
    assert all(c.runs == plan.runs for c in st.bench)
    # stable: the same plan gives the same ids
    assert [c.cell_id for c in expand(plan, targets(plan), versions=VERSIONS).cells] == ids


def test_artifact_key_follows_model_bytes_recipe_and_tools(tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    before = {c.cell_id: c.key for c in expand(plan, targets(plan), versions=VERSIONS).convert}
    newer_tf = {c.cell_id.split("@")[0]: c.key for c in
                expand(plan, targets(plan), versions={**VERSIONS, "tensorflow": "2.22.0"}).convert}
    assert set(newer_tf.values()).isdisjoint(before.values())
    (tmp_path / "m2.keras").write_bytes(b"model two, retrained")
    after = {c.cell_id.split("@")[0]: c.key for c in expand(plan, targets(plan), versions=VERSIONS).convert}
    old = {cid.split("@")[0]: k for cid, k in before.items()}
    assert all(after[i] == old[i] for i in old if i.startswith("convert/m1/"))
    assert all(after[i] != old[i] for i in old if i.startswith("convert/m2/"))
    keys = [c.key for c in expand(plan, targets(plan), versions=VERSIONS).convert if c.model.name == "m1"]
    assert len(set(keys)) == 3  # one per recipe


def test_pending_skips_finished_and_cached(tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    st = expand(plan, targets(plan), versions=VERSIONS)
    cache = ArtifactCache(plan.cache)
    todo, done = pending(st, [], cache)
    assert len(todo) == len(st.cells) and not done
    # an artifact in the cache: its convert cell is done without running
    first = st.convert[0]
    assert first.artifact == cache.path(first.key, "m1", "float32") and first.artifact.is_relative_to(plan.cache)
    first.artifact.parent.mkdir(parents=True)
    first.artifact.write_bytes(b"tflite")
    finished = [c.cell_id for c in st.bench[:4]]
    todo, done = pending(st, finished, cache)
    assert first.cell_id in done and set(finished) <= done
    assert len(todo) == len(st.cells) - 5
    assert {c.cell_id for c in todo}.isdisjoint(done)


def test_expand_wants_concrete_targets(tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    with pytest.raises(ValueError):
        expand(plan, [TargetSpec("all")], versions=VERSIONS)
