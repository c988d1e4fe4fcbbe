"""``eval``: accuracy of .tflite variants against their float reference."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from tflite_deploy import api
from tflite_deploy.cli._common import (AdbServer, ColorMode, Force, ImageSize, JsonFlag, Layout, NoStore, PixelMean, PixelScale,
                                       PixelStd, RunTag, StoreTo, console, progress_bars, quiet_python_warnings,
                                       store_target, user_errors)
from tflite_deploy.envelope import dumps
from tflite_deploy.errors import UserError
from tflite_deploy.render import verbs as render
from tflite_deploy.render.items import eval_items


# ------------------------------------------------------------------------------------------ eval
@user_errors
def eval_cmd(
    models: List[Path] = typer.Argument(..., help="The float reference (.keras/.h5/SavedModel, a float32 .tflite "
                                                  "or an .onnx) first, then the .tflite variants to judge. With "
                                                  "--device, one .tflite alone is enough (compared with the host)."),
    data: str = typer.Option(..., "--data", "-d", help="Evaluation data, e.g. digits:test or an image folder."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", help="Use at most this many samples."),
    top_k: int = typer.Option(5, "--top-k", help="Also report top-k accuracy (when there are more classes)."),
    per_layer: bool = typer.Option(False, "--per-layer", help="Per-layer error of full-integer variants "
                                                              "(QuantizationDebugger), worst first."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Interpreter threads."),
    task: str = typer.Option("auto", "--task", help="auto (from the targets: whole-number y classifies, float y "
                                                    "regresses, no y: agreement only), classification, regression "
                                                    "or agreement."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Run the reference again even when its outputs on "
                                                            "this data are cached from an earlier eval."),
    device: List[str] = typer.Option([], "--device", "-D", help="Run the variant on this Android device (SERIAL, "
                                     "adb:SERIAL or adb://HOST:PORT/SERIAL; repeat for several) per --delegate and "
                                     "compare its outputs with the host's; the reference is then optional."),
    delegate: str = typer.Option("xnnpack", "--delegate", help="With --device: a comma list of xnnpack, gpu, nnapi, "
                                                                "cpu."),
    samples: int = typer.Option(100, "--samples", help="With --device: samples run on the phone (one "
                                                       "benchmark_model process each, per delegate)."),
    benchmark_binary: Optional[Path] = typer.Option(
        None, "--benchmark-binary", envvar="TFLITE_DEPLOY_BENCHMARK_BINARY",
        help="With --device: TFLite's benchmark_model (2.11 or later: --output_filepath) for the phone's ABI; "
             "default: the official nightly build."),
    min_agreement: float = typer.Option(99.0, "--min-agreement", help="With --device: a delegate whose top-1 "
                                                                      "agreement with the host is below this "
                                                                      "(percent) has diverged."),
    min_sqnr: float = typer.Option(30.0, "--min-sqnr", help="With --device: a delegate whose SQNR against the host "
                                                            "is below this (dB) has diverged."),
    gpu_precision: str = typer.Option("fp16", "--gpu-precision", help="With --device: GPU delegate precision, "
                                                                      "fp16 or fp32."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="With --device: seconds one delegate's samples "
                                                                    "may take (default: 60 + 20 per sample)."),
    save_outputs: Optional[Path] = typer.Option(None, "--save-outputs", help="With --device: keep each pulled "
                                                "output file in this folder (SERIAL/DELEGATE.out, raw bytes)."),
    adb_server: AdbServer = None,
    size: ImageSize = None, scale: PixelScale = None, mean: PixelMean = None, std: PixelStd = None,
    color: ColorMode = None, layout: Layout = None, force: Force = False, as_json: JsonFlag = False,
    store: StoreTo = None, tag: RunTag = None, no_store: NoStore = False,
) -> None:
    """Accuracy (or MAE/RMSE) of each variant against the float reference, with a 95% interval on the change;
    with --device, each delegate's outputs on the phone against the same variant on the host."""
    if device:
        quiet_python_warnings()
        from tflite_deploy.datasets import open_dataset as open_data

        if not 0 <= min_agreement <= 100:
            raise UserError(f"--min-agreement is a percentage in 0..100, not {min_agreement:g}.")
        reference, variants = (None, models) if len(models) == 1 else (models[0], models[1:])
        ds = open_data(data, api.preprocess(size, scale, mean, std, color, layout))
        results = []
        with progress_bars(as_json) as progress:
            for variant in variants:
                results += api.evaluate_on_device(
                    variant, ds, device, delegates=delegate, samples=samples, reference=reference,
                    adb_server=adb_server, benchmark_binary=benchmark_binary, threads=threads,
                    min_agreement=min_agreement / 100, min_sqnr_db=min_sqnr, gpu_precision=gpu_precision,
                    timeout=timeout, save_outputs=save_outputs, progress=progress,
                    store=store_target(store, no_store), tag=tag, force=force, cache=not no_cache)
        if as_json:
            print(dumps("eval", [r.to_dict() for r in results]))
        else:
            from tflite_deploy.render.device_eval import device_eval_table

            device_eval_table(results, console())
        if results and not any(r.ok for r in results):
            raise typer.Exit(1)
        return
    if len(models) < 2:
        raise UserError("Give the float reference and at least one .tflite variant to compare with it.")
    quiet_python_warnings()
    from tflite_deploy.datasets import open_dataset

    ds = open_dataset(data, api.preprocess(size, scale, mean, std, color, layout))
    with progress_bars(as_json) as progress:
        results = api.evaluate(models[0], models[1:], ds, limit=limit, top_k=top_k, threads=threads,
                               progress=progress, store=store_target(store, no_store), tag=tag, force=force,
                               task=task, cache=not no_cache)
        layers = api.layer_errors([r.artifact for r in results[1:]], ds, progress=progress) if per_layer else {}
    if as_json:
        print(dumps("eval", eval_items(results, layers)))
    else:
        render.eval_with_layers(results, layers, per_layer, console())


def register(app: typer.Typer) -> None:
    app.command(name="eval")(eval_cmd)
