"""Wall time of a second ``eval`` of new variants against the same ResNet-size Keras reference,
next to the first's, in one run.

    .venv/bin/python tools/bench_eval_reference_cache.py [--limit 32] [--work DIR]

Saves ResNet50 (``tf_keras.applications.ResNet50(weights=None)``: random weights; loading and
running it costs what a trained one does) to a .keras file once, converts it to float32 and float16
variants, then runs ``tflite-deploy eval resnet50.keras resnet50.float32.tflite --data photos`` (the
first eval: TensorFlow loads and runs the reference, whose outputs are cached under a fresh
``TFLITE_DEPLOY_CACHE``) and ``tflite-deploy eval resnet50.keras resnet50.float16.tflite --data photos``
(a new variant: the reference's outputs come from the cache, keyed by the hashes of the model file and
the data), each as its own command. Target: second / first <= 0.1.

It also times the float16 variant's own inference on the same photos (a bare LiteRT run in this
process): the second eval cannot take less than that, whatever the reference costs. The table shows
it and what the second eval spends besides it (imports, data, the cached reference), next to the first.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table


def save_resnet50(path: Path, as_trained: bool = False) -> None:
    """``as_trained``: saved as ``fit`` leaves a model, compiled with Adam and its optimizer state in the
    file (two slots per weight: ~3x the bytes, like the 283 MB ResNet-size reference of the issue)."""
    import numpy as np
    import tf_keras

    model = tf_keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3))
    if as_trained:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(np.zeros((2, 224, 224, 3), np.float32), np.zeros(2, np.int64), epochs=1, verbose=0)
    model.save(path)


def cli() -> list[str]:
    """The installed entry point beside this Python (the command a user runs)."""
    exe = Path(sys.executable).parent / "tflite-deploy"
    return [str(exe)] if exe.exists() else [shutil.which("tflite-deploy") or "tflite-deploy"]


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Wall seconds, exit code and the command's output."""
    started = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return time.perf_counter() - started, p.returncode, p.stdout + p.stderr


def variant_inference_seconds(variant: Path, limit: int, threads: int) -> float:
    """The variant's own inference over the eval's photos (load and run), as the eval does it."""
    from tflite_deploy.datasets import open_dataset
    from tflite_deploy.tflite.runtime import TfliteModel

    x = open_dataset("photos").take(limit)
    started = time.perf_counter()
    TfliteModel(variant, threads=threads).predict_named(x)
    return time.perf_counter() - started


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=32, help="evaluation samples (of the bundled photos)")
    ap.add_argument("--threads", type=int, default=2, help="interpreter threads for the variants (both evals)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of the second eval and of the bare inference (median)")
    ap.add_argument("--work", type=Path, default=None, help="folder for the model and variants (kept between runs)")
    ap.add_argument("--as-trained", action="store_true",
                    help="save the reference as fit() leaves it: with Adam's state (~3x the bytes, as the issue's file)")
    args = ap.parse_args()
    console = Console(width=120)
    work = args.work or Path(tempfile.mkdtemp(prefix="tflite-deploy-refcache-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.as_trained:  # its own folder: the lean file and its variants stay apart
        work = work / "as-trained"
        work.mkdir(exist_ok=True)
    model = work / "resnet50.keras"
    env = {**os.environ, "TFLITE_DEPLOY_CACHE": tempfile.mkdtemp(prefix="tflite-deploy-refcache-entries-")}
    if not model.exists():
        console.print(f"Saving ResNet50 (weights=None) to {model} ...")
        save_resnet50(model, args.as_trained)
    variants = {r: work / "out" / f"resnet50.{r}.tflite" for r in ("float32", "float16")}
    if not all(v.exists() for v in variants.values()):
        console.print("Converting float32 and float16 variants ...")
        secs, code, text = run([*cli(), "convert", str(model), "-r", "float32", "-r", "float16", "--out",
                                str(work / "out"), "--no-store"], env)
        if code:
            console.print(text[-3000:])
            return 1
    def eval_of(variant: Path) -> float:
        secs, code, text = run([*cli(), "eval", str(model), str(variant), "--data", "photos", "--limit",
                                str(args.limit), "--threads", str(args.threads), "--no-store", "--json"], env)
        if code:
            console.print(text[-3000:])
            raise SystemExit(1)
        return secs

    first = eval_of(variants["float32"])
    # the cheap runs are repeated (median): on a shared machine one run can be off by a second
    second = statistics.median(eval_of(variants["float16"]) for _ in range(args.repeat))
    alone = statistics.median(variant_inference_seconds(variants["float16"], args.limit, args.threads)
                              for _ in range(args.repeat))
    rows = [("first eval (runs the reference)", variants["float32"].name, first),
            (f"second eval (cached reference, median of {args.repeat})", variants["float16"].name, second),
            ("  its variant's own inference (bare LiteRT)", variants["float16"].name, alone),
            ("  the rest: imports, data, cached reference", "", second - alone)]
    t = Table(title=f"eval against {model.name} ({model.stat().st_size / 1e6:.0f} MB), {args.limit} photos, "
                    f"{args.threads} thread(s)", title_justify="left")
    for c in ("run", "variant", "wall", "x first"):
        t.add_column(c, justify="left" if c in ("run", "variant") else "right", no_wrap=True)
    for label, name, secs in rows:
        t.add_row(label, name, f"{secs:.1f} s", f"{secs / first:.3f}")
    console.print(t)
    ratio = second / first
    console.print(f"second / first = {ratio:.3f} (target <= 0.1): {'met' if ratio <= 0.1 else 'NOT met'}; "
                  f"the second eval less its variant's own inference: {(second - alone) / first:.3f} of the first")
    return 0 if ratio <= 0.1 else 2


if __name__ == "__main__":
    sys.exit(main())
