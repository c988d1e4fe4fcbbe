"""Accuracy on the phone: each delegate's outputs against the same model on the host, sample by sample.

A delegate can be fast and wrong (GPU fp16 drift, NaNs, an NPU that folds an op wrongly), and
``bench --device`` only says how fast. Here the first N samples of a dataset are written as raw input
files (the tensors' own bytes, quantized as the model takes them), pushed once per input as one file
of all samples, and ``android_harness/run_outputs.sh`` runs TFLite's ``benchmark_model`` once per
sample per delegate (``--input_layer_value_files``, one run, ``--output_filepath``: every output
tensor's raw bytes in the interpreter's order, TF 2.11+), appending each sample's outputs to one file
that is pulled back: one adb shell call and one pull per delegate. The same raw inputs run on the
host (LiteRT, batch of one, as on the phone), and each delegate is judged against the host and, when
given, the float reference: max abs error, SQNR, NaN/Inf count, top-1 agreement, top-1 accuracy with
its interval when the data has labels. A delegate beyond the thresholds is ``diverged``. Device
faults are handled as ``bench --device`` handles them (liveness probe, one failed Result per run the
phone could not do, the other phones finish).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from tflite_deploy.adb import AdbDevice, AdbServer, DeviceTarget, LivenessProbe, parse_target, remote_path
from tflite_deploy.artifact import recipe_name
from tflite_deploy.benchmark.device import LOST, split_harness_output
from tflite_deploy.benchmark.flags import benchmark_args, check_delegate, resolve_runtime
from tflite_deploy.benchmark.inputs import InputValues
from tflite_deploy.benchmark.options import BenchOptions, check_threads
from tflite_deploy.benchmark.parse import parse_benchmark_log
from tflite_deploy.datasets import Dataset
from tflite_deploy.errors import DeviceError, UserError
from tflite_deploy.evaluation.metrics import accuracy, agreement
from tflite_deploy.hashing import sha256_file
from tflite_deploy.result import Result
from tflite_deploy.tflite.runtime import TfliteModel

SCRIPT = Path(__file__).resolve().parent.parent / "data" / "run_outputs.sh"
_DONE = re.compile(r"^==== tflite-deploy done=(\d+) ====\s*$", re.M)
SECONDS_PER_SAMPLE = 20.0  # one benchmark_model process: start, load, (GPU) compile, one run
SETUP_SECONDS = 60.0


@dataclass(frozen=True)
class DeviceEvalOptions:
    """How ``eval --device`` runs and judges: delegates, samples, and when a delegate has diverged."""

    delegates: tuple[str, ...] = ("xnnpack",)
    samples: int = 100
    threads: Optional[int] = None  # None: 4, as bench --device
    min_agreement: float = 0.99    # top-1 agreement with the host below this: diverged
    min_sqnr_db: float = 30.0      # SQNR against the host below this: diverged
    gpu_precision: str = "fp16"
    nnapi_accelerator: Optional[str] = None
    timeout: Optional[float] = None  # one delegate's whole loop; None: from the sample count
    save_outputs: Optional[str] = None  # keep each pulled output file here, as SERIAL/DELEGATE.out

    def check(self) -> None:
        check_threads(self.threads)
        if self.samples < 1:
            raise UserError(f"samples must be at least 1, not {self.samples}.", param="samples")
        if not 0 <= self.min_agreement <= 1:
            raise UserError(f"min_agreement is a fraction in 0..1 (0.99 = 99%), not {self.min_agreement:g}.",
                            param="min_agreement")
        if not self.delegates:
            raise UserError("Name at least one delegate (xnnpack, gpu, nnapi, cpu).", param="delegates")
        bench = self.bench_options()
        for d in self.delegates:
            check_delegate(d, bench)
            if d == "npu":
                raise UserError("eval --device runs TFLite's benchmark_model (its --input_layer_value_files and "
                                "--output_filepath flags); LiteRT's tool, which serves the npu delegate, has no "
                                "such flags yet.", param="delegates")

    def bench_options(self) -> BenchOptions:
        """One run, no warm-up: the outputs of a single invoke from fresh state (an LSTM's too)."""
        return BenchOptions(delegate=self.delegates, threads=self.threads, runs=1, warmup=0, min_seconds=0,
                            runtime="tflite", gpu_precision=self.gpu_precision,
                            nnapi_accelerator=self.nnapi_accelerator).for_device()

    def loop_timeout(self, runs: int) -> float:
        return self.timeout if self.timeout is not None else SETUP_SECONDS + runs * SECONDS_PER_SAMPLE


@dataclass
class HostSide:
    """What every phone is compared with: the inputs as raw bytes, and the host's and reference's outputs."""

    model: TfliteModel
    unit: int                       # samples per run (the model's fixed batch, else 1)
    runs: int                       # benchmark_model processes per delegate
    values: InputValues             # names and per-run shapes; data: every run's bytes, per input
    sizes: tuple[int, ...]          # bytes of one run of each input
    host: dict[str, np.ndarray]     # the variant on the host, dequantized, by output name
    reference: Optional[dict[str, np.ndarray]] = None
    labels: Optional[np.ndarray] = None
    dataset: str = ""
    key: str = ""                   # the model's and samples' hash: the folder on the phone
    details: list = field(default_factory=list)  # output details in the interpreter's (file) order


def prepare_host(variant: Path, ds: Dataset, samples: int, reference: Optional[dict[str, np.ndarray]] = None,
                 threads: Optional[int] = None) -> HostSide:
    """Raw inputs of the first ``samples`` samples and the variant's host outputs on exactly them."""
    model = TfliteModel(variant, threads=threads)
    unit = model.fixed_batch or 1
    n = min(samples, len(ds)) // unit * unit
    if n == 0:
        raise UserError(f"Model {variant} runs {unit} samples at a time; dataset {ds.name!r} gives "
                        f"{min(samples, len(ds))}.", param="samples")
    arrays = model.feed(ds.take(n), ds.name)
    outs: list[dict[str, np.ndarray]] = []
    runs = n // unit
    for i in range(runs):  # the host runs what the phone runs: one batch of `unit`, from the same bytes
        outs.append(model.predict_named({k: v[i * unit:(i + 1) * unit] for k, v in arrays.items()}, ds.name))
    host = {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}
    data, shapes, sizes = [], [], []
    for d in model.inputs:
        raw = np.ascontiguousarray(model.quantize_input(np.asarray(arrays[model.name_of(d)]), d))
        shapes.append((unit, *raw.shape[1:]))
        sizes.append(raw[:unit].nbytes)
        data.append(raw.tobytes())
    values = InputValues(tuple(str(d["name"]) for d in model.inputs), tuple(shapes), tuple(data), ds.name)
    labels = np.asarray(ds.labels[:n]) if ds.labels is not None else None
    digest = hashlib.sha256(sha256_file(variant).encode() + b"".join(data)).hexdigest()[:16]
    details = list(model.interpreter.get_output_details())  # at batch `unit` after the runs above
    return HostSide(model, unit, runs, values, tuple(sizes), host,
                    {k: v[:n] for k, v in reference.items()} if reference is not None else None,
                    labels, ds.name, digest, details)


def parse_outputs(raw: bytes, side: HostSide, runs: int) -> dict[str, np.ndarray]:
    """The pulled file: per run, every output tensor's bytes in the interpreter's order; dequantized, by name."""
    m = side.model
    sizes = [int(np.prod(d["shape"])) * np.dtype(d["dtype"]).itemsize for d in side.details]
    per_run = sum(sizes)
    if len(raw) != per_run * runs:
        raise ValueError(f"the output file holds {len(raw)} bytes; {runs} run(s) of {per_run} were expected")
    out: dict[str, list[np.ndarray]] = {m.name_of(d): [] for d in side.details}
    for r in range(runs):
        at = r * per_run
        for d, size in zip(side.details, sizes):
            a = np.frombuffer(raw[at:at + size], np.dtype(d["dtype"])).reshape(d["shape"])
            out[m.name_of(d)].append(m.dequantize_output(a, d))
            at += size
    return {k: np.concatenate(v) for k, v in out.items()}


def judge(side: HostSide, device: dict[str, np.ndarray], opts: DeviceEvalOptions,
          resamples: int = 2000) -> tuple[dict[str, Any], list[str]]:
    """The delegate's figures against the host (and the reference), and why it diverged (empty: it did not)."""
    names = list(side.host)
    per_output = {k: agreement(side.host[k], device[k]) for k in names}
    main = names[0]
    vs_host = per_output[main]
    metrics: dict[str, Any] = {"role": "device", "samples": len(side.host[main]), "dataset": side.dataset,
                               "max_abs_error": vs_host["max_abs_error"], "sqnr_db": vs_host["sqnr_db"],
                               "nonfinite": sum(m["nonfinite"] for m in per_output.values()),
                               "identical": all(m["max_abs_error"] == 0 for m in per_output.values()),
                               "vs_host": vs_host}
    if "label_agreement" in vs_host:
        metrics["top1_agreement"] = vs_host["label_agreement"]
    if len(names) > 1:
        metrics["outputs"] = per_output
    if side.reference is not None:
        ref = side.reference.get(main, next(iter(side.reference.values())))
        if ref.shape == device[main].shape:
            metrics["vs_reference"] = agreement(ref, device[main])
            metrics["host_vs_reference"] = agreement(ref, side.host[main])
    values = device[main]
    if side.labels is not None and values.ndim == 2 and values.shape[1] > 1 and side.labels.max() < values.shape[1]:
        acc = accuracy(np.nan_to_num(values, nan=-np.inf), side.labels, 5, resamples)
        metrics.update({"top1": acc["top1"], "top1_ci95": acc["top1_ci95"],
                        "host_top1": accuracy(side.host[main], side.labels, 5, resamples)["top1"]})
    reasons = []
    for name, m in per_output.items():
        where = f" (output {name!r})" if len(names) > 1 else ""
        if m["nonfinite"]:
            reasons.append(f"{m['nonfinite']} NaN/Inf value(s){where}")
        agree = m.get("label_agreement")
        if agree is not None and agree < opts.min_agreement:
            reasons.append(f"top-1 agreement with the host {100 * agree:.1f}% < {100 * opts.min_agreement:g}%{where}")
        sqnr = m["sqnr_db"]
        if not m["nonfinite"] and (np.isnan(sqnr) or sqnr < opts.min_sqnr_db):
            reasons.append(f"SQNR against the host {sqnr:.1f} dB < {opts.min_sqnr_db:g} dB{where}")
    metrics["diverged"] = bool(reasons)
    metrics["divergence"] = reasons
    return metrics, reasons


# ------------------------------------------------------------------------------------ on the phone
def _failed(side: HostSide, variant: Path, target: str, delegate: str, error: str, device: dict,
            settings: dict, status: str = "failed", fault: Optional[str] = None, log: str = "") -> Result:
    return Result(kind="eval", artifact=str(variant), target=target, runner="benchmark_model", delegate=delegate,
                  status=status, error=error, fault=fault, device=dict(device), settings=settings,
                  recipe=recipe_name(variant), raw_log=log)


def eval_one_device(target: DeviceTarget, variant: Path, tool: Optional[Path], side: HostSide, opts: DeviceEvalOptions,
                    on_result: Optional[Callable[[Result], Optional[Result]]] = None) -> list[Result]:
    """Every delegate of ``opts`` on one phone. Never raises for device faults: they become failed results."""
    name = f"adb:{target.serial}" if target.server == AdbServer.from_env() else str(target)
    s = opts.bench_options()
    settings = {"dataset": side.dataset, "samples": side.runs * side.unit, "threads": s.threads, "runtime": "tflite",
                "min_agreement": opts.min_agreement, "min_sqnr_db": opts.min_sqnr_db, "on_device": True,
                "gpu_precision": opts.gpu_precision}
    facts: dict = {"serial": target.serial}
    results: list[Result] = []

    def emit(r: Result) -> None:  # on_result may return the Result as recorded (the store's copy)
        results.append((on_result(r) or r) if on_result else r)

    try:
        dev = AdbDevice.open(target, timeout=30)
    except (DeviceError, UserError) as e:
        for d in opts.delegates:
            emit(_failed(side, variant, name, d, str(e), facts, settings,
                         fault=e.reason if isinstance(e, DeviceError) else None))
        return results
    with LivenessProbe(dev) as probe:
        _session(dev.stopped_by(probe.frozen), probe, name, variant, tool, side, opts, s, settings, facts, emit)
    return results


def _session(dev: AdbDevice, probe: LivenessProbe, name: str, variant: Path, tool: Optional[Path], side: HostSide,
             opts: DeviceEvalOptions, s: BenchOptions, settings: dict, facts: dict,
             emit: Callable[[Result], None]) -> None:
    def fault(e: DeviceError) -> tuple[str, str]:
        reason = probe.fault_of(e)
        return reason, probe.describe() if reason == "frozen" else str(e)

    folder = remote_path("eval", side.key)
    try:
        info = dev.info()
        facts.clear()
        facts.update({k: v for k, v in asdict(info).items() if v not in (None, (), "")})
        script = remote_path("run_outputs.sh")
        dev.push(SCRIPT, script, mode=0o755)
        binary = remote_path("bin", "benchmark_model")
        if tool is None:  # the official build for this phone's ABI, fetched once
            from tflite_deploy.benchmark.binaries import fetch_tool

            tool = fetch_tool(info.abis[0] if info.abis else "arm64-v8a")
        dev.push(tool, binary, mode=0o755)
        model = remote_path("models", sha256_file(variant)[:16], variant.name)
        dev.push(variant, model)
        with tempfile.TemporaryDirectory(prefix="tflite-deploy-eval-") as tmp:
            for j, raw in enumerate(side.values.data):  # one file per input holds every sample
                local = Path(tmp) / f"input{j}.all"
                local.write_bytes(raw)
                dev.push(local, f"{folder}/input{j}.all")
    except (DeviceError, UserError) as e:
        reason, text = fault(e) if isinstance(e, DeviceError) else (None, str(e))
        for d in opts.delegates:
            emit(_failed(side, variant, name, d, text, facts, settings, fault=reason))
        return

    lost: Optional[str] = None
    flags = side.values.flags([f"in{j}.bin" for j in range(len(side.values.data))])
    for d in opts.delegates:
        if lost:
            emit(_failed(side, variant, name, d, f"not run: the device was lost earlier ({lost})", facts, settings,
                         fault=lost))
            continue
        out = f"{folder}/{d}.out"
        args = benchmark_args(model, d, s) + ["--warmup_min_secs=0"] + flags
        cmd = ["sh", script, folder, str(side.runs), ",".join(str(x) for x in side.sizes), out, binary, *args]
        try:
            sh = dev.shell(cmd, timeout=opts.loop_timeout(side.runs))
            text = sh.stdout + ("\n" + sh.stderr if sh.stderr else "")
            problem = _run_problem(text, sh.exit_code, d, side.runs)
            if problem:
                emit(_failed(side, variant, name, d, problem[1], facts, settings, status=problem[0], log=text))
                continue
            with tempfile.TemporaryDirectory(prefix="tflite-deploy-eval-") as tmp:
                dev.pull(out, Path(tmp) / "out.bin")
                raw = (Path(tmp) / "out.bin").read_bytes()
            if opts.save_outputs:
                _save(Path(opts.save_outputs) / re.sub(r"[^\w.-]", "_", dev.serial) / f"{d}.out", raw)
        except DeviceError as e:
            reason, msg = fault(e)
            emit(_failed(side, variant, name, d, msg, facts, settings, fault=reason))
            if reason in LOST:
                lost = reason
            continue
        try:
            device_out = parse_outputs(raw, side, side.runs)
        except ValueError as e:
            emit(_failed(side, variant, name, d, f"benchmark_model's output file is not this model's: {e}", facts,
                         settings, log=text))
            continue
        metrics, reasons = judge(side, device_out, opts)
        warnings = tuple(f"{d} diverges from the host: {r}" for r in reasons)
        emit(Result(kind="eval", artifact=str(variant), target=name, runner="benchmark_model", delegate=d,
                    settings=settings, metrics=metrics, device=dict(facts), recipe=recipe_name(variant),
                    warnings=warnings, raw_log=split_harness_output(text).get("benchmark", "")))
    if not lost:
        try:
            dev.remove(folder)  # the samples and outputs go; the model stays, keyed by content, as with bench
        except DeviceError:
            pass


def _save(path: Path, raw: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    tmp.write_bytes(raw)
    tmp.replace(path)


def _run_problem(text: str, exit_code: int, delegate: str, runs: int) -> Optional[tuple[str, str]]:
    """(status, error) when a delegate's loop did not give every sample's outputs, else None."""
    parts = split_harness_output(text)
    log = parse_benchmark_log(parts.get("benchmark", text))
    done = _DONE.search(text)
    if "end" not in parts or done is None:
        return "failed", "the harness output was cut off (device lost mid-run?)"
    cov = log.delegate(delegate)
    failed_to_apply = f"Failed to apply {delegate.upper()} delegate" in text or (cov is not None and cov.applied is False)
    if int(done.group(1)) < runs or exit_code != 0 or parts.get("exit", "0") != "0":
        tail = "\n".join(line for line in parts.get("benchmark", "").splitlines()
                         if "ERROR" in line or "tflite-deploy:" in line)[-600:]
        if failed_to_apply and delegate in ("gpu", "nnapi"):
            return "unavailable", f"{delegate.upper()} delegate not available on this device: {tail}".strip()
        return "failed", (f"benchmark_model failed on sample {done.group(1)} of {runs} "
                          f"(exit {parts.get('exit', exit_code)}): {tail}").strip()
    return None


def eval_devices(variant: str | Path, ds: Dataset, targets: Sequence[str], tool: Optional[str | Path],
                 opts: DeviceEvalOptions = DeviceEvalOptions(), reference: Optional[dict[str, np.ndarray]] = None,
                 on_result: Optional[Callable[[Result], Optional[Result]]] = None) -> list[Result]:
    """``variant`` on every target × delegate, compared with the host; results in target order.

    ``reference``: the float reference's outputs on the same samples (by output name), when given.
    ``on_result`` hears each Result as it completes (from the device's worker thread) and may return
    the Result to keep in its place (e.g. as recorded in the store)."""
    opts.check()
    path = Path(variant)
    if not path.is_file():
        raise UserError(f"Model {path} does not exist.", param="variant")
    if path.suffix != ".tflite":
        raise UserError(f"eval --device runs a .tflite on the phone; {path} is not one.", param="variant")
    tool_path = Path(tool) if tool is not None else None
    if tool_path is not None and not tool_path.is_file():
        raise UserError(f"The benchmark_model binary {tool_path} does not exist. Download TFLite's official "
                        "build (2.11 or later) for your phone's ABI.", param="benchmark_binary")
    if tool_path is not None and resolve_runtime("auto", tool_path) == "litert":
        raise UserError(f"{tool_path} is LiteRT's benchmark_model, which has no --input_layer_value_files or "
                        "--output_filepath: give TFLite's classic benchmark_model (2.11 or later), or leave the "
                        "option out to fetch it.", param="benchmark_binary")
    side = prepare_host(path, ds, opts.samples, reference, opts.threads)
    parsed = [parse_target(t if t.startswith("adb") else f"adb:{t}") for t in targets]
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(parsed))) as pool:
        futures = [pool.submit(eval_one_device, t, path, tool_path, side, opts, on_result) for t in parsed]
        return [r for f in futures for r in f.result()]
