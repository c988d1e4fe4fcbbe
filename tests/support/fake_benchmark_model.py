"""A stand-in for benchmark_model, run by the fake device (tests/support/fake_adbd.py).

It really runs the model with the LiteRT interpreter on the host and prints benchmark_model's own
line formats (TF 2.x with INFO: prefixes, as in tests/data/benchmark_logs/tf2_cpu_memory_delta.txt).
This device has no GPU and no NNAPI: asking for them fails the way the real tool does when a
delegate cannot be applied. The test writes this file out with a shebang naming its Python.

Given LiteRT's own flags (``--use_cpu=..``), it plays LiteRT's benchmark_model instead: the same
runner lines, then the results block with the exact format strings of
litert/tools/benchmark_litert_model.h (LiteRT f67457790c9c2ab67347d6fe53270e8d3df20868), each line
through LITERT_LOG's ``INFO: [file:line] `` prefix. Its GPU accelerator cannot be loaded (CPU
fallback, or a failure with --require_full_delegation); its NPU accelerator loads only when
``--dispatch_library_path`` holds a ``libLiteRtDispatch_*.so``, and then the fake "dispatch library"
refuses this SoC. A warm process (the cache file from a first run is there) initialises faster.

For ``eval --device`` it honours ``--output_filepath`` as benchmark_tflite_model.cc's OutputSaver
does (TF 2.11+): after the runs, every output tensor's raw bytes, in the interpreter's output order,
one after the other. A device can be given delegates through its environment
(``FakeAdbd.env["FAKE_DELEGATES"] = "gpu=fp16,nnapi=nan"``): ``exact`` runs like the CPU, ``fp16``
rounds what a GPU at fp16 precision rounds (every float32 constant tensor of the model, the float
inputs and the float outputs go through float16), ``nan`` writes NaN into every float output.
Without it, GPU and NNAPI cannot be applied (as on a phone without them).
"""

import os
import sys
import time

args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
graph = args.get("graph", "")
DELEGATES = dict(item.split("=", 1) for item in os.environ.get("FAKE_DELEGATES", "").split(",") if "=" in item)


def asked_delegate() -> str:
    for name in ("gpu", "nnapi"):
        if args.get(f"use_{name}") == "true":
            return name
    return "xnnpack" if args.get("use_xnnpack", "true") == "true" else "cpu"


MODE = DELEGATES.get(asked_delegate(), "exact")


def fp16_model_bytes(path: str) -> bytes:
    """The model with every float32 constant tensor rounded through float16 (in a copy of the bytes)."""
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    data = bytearray(open(path, "rb").read())
    model = schema.Model.GetRootAsModel(data, 0)
    seen = set()
    for g in range(model.SubgraphsLength()):
        sub = model.Subgraphs(g)
        for t in range(sub.TensorsLength()):
            tensor = sub.Tensors(t)
            b = tensor.Buffer()
            if tensor.Type() != schema.TensorType.FLOAT32 or b == 0 or b in seen:
                continue
            seen.add(b)
            buf = model.Buffers(b)
            o = buf._tab.Offset(4)  # the data vector
            if not o or not buf.DataLength():
                continue
            start = buf._tab.Vector(o)
            n = buf.DataLength()
            values = np.frombuffer(bytes(data[start:start + n]), np.float32)
            data[start:start + n] = values.astype(np.float16).astype(np.float32).tobytes()
    return bytes(data)


def through_fp16(a):
    import numpy as np

    return a.astype(np.float16).astype(a.dtype) if np.issubdtype(a.dtype, np.floating) else a


def save_outputs(it) -> None:
    """benchmark_tflite_model.cc's OutputSaver: every output tensor's raw bytes, in order, into one file."""
    import numpy as np

    path = args.get("output_filepath", "")
    if not path:
        return
    with open(path, "wb") as f:
        for d in it.get_output_details():
            a = np.ascontiguousarray(it.get_tensor(d["index"]))
            if MODE == "fp16":
                a = through_fp16(a)
            elif MODE == "nan" and np.issubdtype(a.dtype, np.floating):
                a = np.full_like(a, np.nan)
            f.write(a.tobytes())


def litert_main() -> None:
    """LiteRT's benchmark_model: what it prints, in its order (stderr and stdout together)."""
    def log(line: int, text: str, level: str = "INFO") -> None:  # LITERT_LOG (stderr on the real tool; the harness merges both)
        print(f"{level}: [benchmark_litert_model.h:{line}] {text}" if line else f"{level}: {text}", flush=True)

    print("INFO: STARTING!")
    print(f"INFO: Num threads: [{args.get('num_threads', 1)}]")
    print(f"INFO: [benchmark_litert_model.cc:305] Loading model from: {graph}")
    npu_dir = args.get("dispatch_library_path", "")
    if args.get("use_npu") == "true":
        libs = [f for f in os.listdir(npu_dir)] if npu_dir and os.path.isdir(npu_dir) else []
        if not any(f.startswith("libLiteRtDispatch_") for f in libs):
            print("WARNING: [npu_registry.cc:33] NPU accelerator could not be loaded and registered: "
                  "kLiteRtStatusErrorDynamicLoading.")
        else:
            print("INFO: [npu_registry.cc:30] NPU accelerator registered.")
            print("ERROR: [dispatch_api.cc:87] Unsupported SoC: this device's NPU is not served by the given "
                  "dispatch library")
            print("ERROR: Benchmarking failed.")
            sys.exit(1)
    if args.get("use_gpu") == "true":
        print("WARNING: [gpu_registry.cc:152] GPU accelerator could not be loaded and registered.")
    if args.get("use_cpu") == "false":  # --require_full_delegation: nothing may fall back to the CPU
        print("ERROR: [compiled_model.cc:412] Failed to compile model: no accelerator can run the whole graph")
        print("ERROR: Benchmarking failed.")
        sys.exit(1)
    print("INFO: [cpu_registry.cc:75] XNNPACK CPU accelerator registered.")
    cache = args.get("xnnpack_weight_cache_file_path") or os.path.join(
        args.get("gpu_serialization_dir") or args.get("compiler_cache_path") or "", "fake.cache")
    warm = bool(os.path.dirname(cache)) and os.path.exists(cache)

    init_us, warm_runs, runs, _ = measure(cache if os.path.dirname(cache) and not warm else "")
    avg = sum(runs) / len(runs)
    std = (sum((x - avg) ** 2 for x in runs) / len(runs)) ** 0.5
    log(89, "\n========== BENCHMARK RESULTS ==========")
    log(94, "Model initialization: %.2f ms" % (init_us / 1000.0))
    log(95, "Warmup (first):       %.2f ms" % (warm_runs[0] / 1000.0))
    log(97, "Warmup (avg):         %.2f ms (%d runs)" % (sum(warm_runs) / len(warm_runs) / 1000.0, len(warm_runs)))
    log(99, "Inference (avg):      %.2f ms (%d runs)" % (avg / 1000.0, len(runs)))
    log(103, "Inference (min):      %.2f ms" % (min(runs) / 1000.0))
    log(105, "Inference (max):      %.2f ms" % (max(runs) / 1000.0))
    log(107, "Inference (std):      %.2f" % (std / 1000.0))
    log(115, "Throughput:           %.2f MB/s" % 1.5)
    log(124, "\nMemory Usage:")
    log(125, "Init footprint:       %.2f MB" % 3.5)
    log(127, "Overall footprint:    %.2f MB" % 5.25)
    log(132, "Peak memory:          %.2f MB" % 12.5)
    log(138, "======================================\n")


def run(it, n):
    times = []
    for _ in range(n):
        s = time.perf_counter()
        try:
            it.invoke()
        except RuntimeError as e:  # the real tool: the kernel's error, then the failed node, exit 1
            print(f"ERROR: {str(e).strip().splitlines()[0]}", file=sys.stderr)
            print("ERROR: Benchmarking failed.", file=sys.stderr)
            sys.exit(1)
        times.append(int((time.perf_counter() - s) * 1e6))
    return times


def fill_inputs(it):
    """As benchmark_tflite_model.cc does: by position, --input_layer_shape resizes, a value file (raw bytes)
    fills an input, else random values in the type's default range (int32 0..99, float -0.5..0.5)."""
    import numpy as np

    names = [n for n in args.get("input_layer", "").split(",") if n]
    shapes = [[int(d) for d in s.split(",")] for s in args.get("input_layer_shape", "").split(":") if s]
    files = {}
    for item in [f for f in args.get("input_layer_value_files", "").split(",") if f]:
        parts = item.replace("::", "\0").split(":")  # benchmark_tflite_model.cc: "::" is a literal colon
        files[parts[0].replace("\0", ":")] = parts[1].replace("\0", ":")
    details = it.get_input_details()
    if names and len(names) != len(details):
        print(f"ERROR: Inputs mismatch: Model inputs #:{len(names)} expected: {len(details)}", file=sys.stderr)
        sys.exit(1)
    for j, shape in enumerate(shapes):
        it.resize_tensor_input(details[j]["index"], shape)
    it.allocate_tensors()
    rng = np.random.default_rng(0)
    for j, d in enumerate(it.get_input_details()):
        dtype, shape = np.dtype(d["dtype"]), d["shape"]
        if j < len(names) and names[j] in files:
            raw = open(files[names[j]], "rb").read()
            if len(raw) != int(np.prod(shape)) * dtype.itemsize:
                print(f"ERROR: The size of {files[names[j]]} is {len(raw)} bytes.", file=sys.stderr)
                sys.exit(1)
            value = np.frombuffer(raw, dtype).reshape(shape)
            it.set_tensor(d["index"], through_fp16(value) if MODE == "fp16" else value)
        elif np.issubdtype(dtype, np.floating):
            it.set_tensor(d["index"], rng.uniform(-0.5, 0.5, shape).astype(dtype))
        elif dtype == np.int8:
            it.set_tensor(d["index"], rng.integers(-127, 128, shape).astype(dtype))
        elif dtype == np.uint8:
            it.set_tensor(d["index"], rng.integers(0, 255, shape).astype(dtype))
        else:
            it.set_tensor(d["index"], rng.integers(0, 100, shape).astype(dtype))


def stats(t):
    avg = sum(t) / len(t)
    std = int((sum((x - avg) ** 2 for x in t) / len(t)) ** 0.5)
    return f"count={len(t)} first={t[0]} curr={t[-1]} min={min(t)} max={max(t)} avg={avg:g} std={std}"


def measure(cache_to_write: str = ""):
    """The runner both tools share: load, init, warm-up and runs, with their lines.
    Returns (init us, warm-up times, run times, interpreter). ``cache_to_write``: a cold process
    compiling LiteRT's cache there, which costs it init time."""
    from ai_edge_litert.interpreter import Interpreter

    t0 = time.perf_counter()
    if MODE == "fp16":
        it = Interpreter(model_content=fp16_model_bytes(graph), num_threads=int(args.get("num_threads", 1)))
    else:
        it = Interpreter(model_path=graph, num_threads=int(args.get("num_threads", 1)))
    it.allocate_tensors()
    fill_inputs(it)
    if cache_to_write:
        time.sleep(0.05)
        with open(cache_to_write, "w") as f:
            f.write("cache")
    init_us = (time.perf_counter() - t0) * 1e6
    print("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.")
    print(f"INFO: Initialized session in {init_us / 1000:.3f}ms.")
    # benchmark_model: no warm-up run with --warmup_runs=0 --warmup_min_secs=0
    no_warmup = args.get("warmup_runs") == "0" and float(args.get("warmup_min_secs", 0.5)) == 0
    warm = run(it, 0 if no_warmup else max(1, int(args.get("warmup_runs", 1))))
    print("INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if "
          "exceeding 150 seconds.")
    print("INFO: " + (stats(warm) if warm else "count=0") + "\n")
    runs = run(it, int(args.get("num_runs", 50)))
    print(f"INFO: Running benchmark for at least {args.get('num_runs', 50)} iterations and at least "
          f"{args.get('min_secs', 1)} seconds but terminate if exceeding 150 seconds.")
    print("INFO: " + stats(runs) + "\n", flush=True)
    return init_us, warm, runs, it


if "use_cpu" in args:  # only LiteRT's benchmark_model takes --use_cpu
    litert_main()
    sys.exit(0)
print("INFO: STARTING!")
print("INFO: Log parameter values verbosely: [0]")
print(f"INFO: Min num runs: [{args.get('num_runs', 50)}]")
print(f"INFO: Num threads: [{args.get('num_threads', 1)}]")
print(f"INFO: Graph: [{graph}]")
if args.get("use_gpu") == "true":
    print("INFO: Use gpu: [1]")
print(f"INFO: Loaded model {graph}", flush=True)
if asked_delegate() in ("gpu", "nnapi") and asked_delegate() in DELEGATES:
    print(f"INFO: Explicitly applied {asked_delegate().upper()} delegate, and the model graph will be completely "
          "executed by the delegate.")
elif args.get("use_gpu") == "true" or args.get("use_nnapi") == "true":
    name = "GPU" if args.get("use_gpu") == "true" else "NNAPI"
    if name == "GPU":
        print('ERROR: Can not open OpenCL library on this device - dlopen failed: library "libOpenCL.so" not found',
              file=sys.stderr)
    print(f"ERROR: Failed to apply {name} delegate.", file=sys.stderr)
    print("ERROR: Benchmarking failed.", file=sys.stderr)
    sys.exit(1)

init_us, warm, runs, it = measure()
if float(args.get("min_secs", 0) or 0) >= 30:  # a test's way to make a run take long
    time.sleep(float(args["min_secs"]))
save_outputs(it)
print(f"INFO: Inference timings in us: Init: {int(init_us)}, First inference: {(warm or runs)[0]}, "
      f"Warmup (avg): {sum(warm) / max(1, len(warm)):g}, Inference (avg): {sum(runs) / len(runs):g}")
print("INFO: Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE "
      "to the actual memory footprint of the model at runtime. Take the information at your discretion.")
print("INFO: Memory footprint delta from the start of the tool (MB): init=3.5 overall=5.25")
print("INFO: Overall peak memory footprint (MB) via periodic monitoring: 12.5")
if args.get("enable_op_profiling") == "true":  # the 2021+ table layout (no [start] column), per op
    ops = it._get_ops_details()
    avg = sum(runs) / len(runs) / 1000 / max(1, len(ops))
    print("INFO: Operator-wise Profiling Info for Regular Benchmark Runs:")
    print("============================== Run Order ==============================")
    print("\t[node type]\t[first]\t[avg ms]\t[%]\t[cdf%]\t[mem KB]\t[times called]\t[Name]")
    for i, op in enumerate(ops):
        share = 100 / len(ops)
        print(f"\t{op['op_name']}\t{avg:.3f}\t{avg:.3f}\t{share:.3f}%\t{share * (i + 1):.3f}%\t0.000\t1\t[op{i}]:{i}")
