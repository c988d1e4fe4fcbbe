"""The reference once, fast (issue 27): a second ``eval`` against a cached reference reads neither the
reference's bytes (its hash is remembered by stat key) nor TensorFlow, scikit-learn or SQLAlchemy; a
changed reference or dataset still misses the cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tflite_deploy import hashing


def _counting_hash(monkeypatch) -> list[Path]:
    """Record every content hash that :func:`hashing.sha256_remembered` falls back to."""
    calls: list[Path] = []
    real = hashing.sha256_file

    def counted(path):
        calls.append(Path(path))
        return real(path)

    monkeypatch.setattr(hashing, "sha256_file", counted)
    return calls


def test_a_remembered_hash_is_used_while_the_file_is_unchanged_and_redone_when_it_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("TFLITE_DEPLOY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(hashing, "REMEMBER_FROM_BYTES", 0)  # these small files stand for a big model
    f = tmp_path / "model.keras"
    f.write_bytes(b"a" * 100_000)
    calls = _counting_hash(monkeypatch)
    first = hashing.sha256_remembered(f)
    assert first == hashing.sha256_file(f) and len(calls) == 2
    calls.clear()
    assert hashing.sha256_remembered(f) == first and calls == []  # the stat key matched: no byte read

    # same size, mtime set back: the bytes changed all the same (ctime moved), so the content is hashed again
    st = f.stat()
    with open(f, "r+b") as fh:
        fh.seek(50_000)
        fh.write(b"b")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert f.stat().st_size == st.st_size and f.stat().st_mtime_ns == st.st_mtime_ns
    changed = hashing.sha256_remembered(f)
    assert changed != first and changed == hashing.sha256_file(f) and len(calls) == 2

    # another file moved in its place (another inode), same bytes as before and same mtime
    other = tmp_path / "other"
    other.write_bytes(b"a" * 100_000)
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(other, f)
    calls.clear()
    assert hashing.sha256_remembered(f) == first and len(calls) == 1

    # a damaged memo is no failure: the content is hashed again
    for memo in (tmp_path / "cache" / "hashes").iterdir():
        memo.write_text("{not json")
    calls.clear()
    assert hashing.sha256_remembered(f) == first and len(calls) == 1


def test_a_folder_reference_is_remembered_by_all_its_files(tmp_path, monkeypatch):
    monkeypatch.setenv("TFLITE_DEPLOY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(hashing, "REMEMBER_FROM_BYTES", 0)
    saved = tmp_path / "saved_model"
    (saved / "variables").mkdir(parents=True)
    (saved / "saved_model.pb").write_bytes(b"graph")
    (saved / "variables" / "variables.data").write_bytes(b"weights")
    first = hashing.sha256_remembered(saved)
    assert first == hashing.sha256_file(saved)
    assert len(list((tmp_path / "cache" / "hashes").iterdir())) == 1
    (saved / "variables" / "variables.data").write_bytes(b"weightz")
    assert hashing.sha256_remembered(saved) == hashing.sha256_file(saved) != first


def test_small_files_are_hashed_each_time_and_leave_no_memo(tmp_path, monkeypatch):
    monkeypatch.setenv("TFLITE_DEPLOY_CACHE", str(tmp_path / "cache"))
    f = tmp_path / "small.tflite"
    f.write_bytes(b"x" * 1000)
    assert hashing.sha256_remembered(f) == hashing.sha256_file(f)
    assert not (tmp_path / "cache").exists()


def test_the_bundled_photos_come_without_importing_scikit_learn():
    from sklearn.datasets import load_sample_images

    from tflite_deploy.datasets.open import _sample_photos

    ours, theirs = _sample_photos(), load_sample_images().images
    assert len(ours) == len(theirs) == 2
    assert all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(ours, theirs))
    code = ("import sys; from tflite_deploy.datasets import open_dataset; ds = open_dataset('photos'); "
            "print(len(ds), 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["32", "False"]


@pytest.mark.slow
def test_a_cached_eval_loads_neither_tensorflow_nor_scikit_learn_nor_sqlalchemy(digits_keras, digits_variants,
                                                                                 tmp_path, monkeypatch):
    """What a second eval used to pay for nothing: TF (a Keras reference), sklearn (the photos), the store."""
    from tflite_deploy.evaluation.run import evaluate

    monkeypatch.setenv("TFLITE_DEPLOY_CACHE", str(tmp_path / "cache"))
    int8, f16 = str(digits_variants["int8"].path), str(digits_variants["float16"].path)
    first = evaluate(digits_keras, [int8], "digits:test")
    assert first[0].settings["reference_cached"] is False
    code = f"""
import json, sys
from tflite_deploy.cli.app import app
try:
    app({["eval", str(digits_keras), f16, "--data", "digits:test", "--no-store", "--json"]!r})
except SystemExit as e:
    code = e.code
print(json.dumps({{"exit": code, "loaded": sorted(m for m in ("tensorflow", "tf_keras", "keras", "sklearn",
      "sqlalchemy") if m in sys.modules)}}), file=sys.stderr)
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "TFLITE_DEPLOY_CACHE": str(tmp_path / "cache")})
    seen = json.loads(p.stderr.strip().splitlines()[-1])
    assert seen["exit"] in (0, None), p.stdout + p.stderr
    # digits comes from scikit-learn itself; the photos do not (test above). TF and the store stay out.
    assert not {"tensorflow", "tf_keras", "keras", "sqlalchemy"} & set(seen["loaded"]), seen
    items = json.loads(p.stdout)
    assert '"reference_cached": true' in json.dumps(items)


@pytest.mark.slow
def test_a_changed_reference_or_dataset_misses_the_cache(digits_variants, tmp_path, monkeypatch):
    from tflite_deploy.evaluation import reference
    from tflite_deploy.evaluation.run import evaluate

    monkeypatch.setenv("TFLITE_DEPLOY_CACHE", str(tmp_path / "cache"))
    ref = tmp_path / "reference.tflite"
    shutil.copy(digits_variants["float32"].path, ref)
    int8 = digits_variants["int8"].path
    from tflite_deploy.datasets import open_dataset

    x = np.asarray(open_dataset("digits:test").take(100))
    y = np.asarray(open_dataset("digits:test").labels[:100])
    data = tmp_path / "digits.npz"
    np.savez(data, x=x, y=y)
    assert evaluate(ref, [int8], str(data))[0].settings["reference_cached"] is False
    runs = []
    real = reference.reference_predictor

    def counted(*a, **k):
        runs.append(a[0])
        return real(*a, **k)

    monkeypatch.setattr(reference, "reference_predictor", counted)
    assert evaluate(ref, [int8], str(data))[0].settings["reference_cached"] is True and runs == []

    # one weight byte changed in place, size and mtime kept: the reference runs again
    st, blob = ref.stat(), bytearray(ref.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    with open(ref, "r+b") as fh:
        fh.write(blob)
    os.utime(ref, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert evaluate(ref, [int8], str(data))[0].settings["reference_cached"] is False and len(runs) == 1

    # one sample changed, same shapes: the reference runs again
    x[0, 0, 0, 0] += 0.5
    np.savez(data, x=x, y=y)
    assert evaluate(ref, [int8], str(data))[0].settings["reference_cached"] is False and len(runs) == 2
    assert evaluate(ref, [int8], str(data))[0].settings["reference_cached"] is True and len(runs) == 2
