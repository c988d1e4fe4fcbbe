"""A stand-in for TFLite's benchmark_model, run by the fake device (tests/support/fake_adbd.py).

It really runs the model with the LiteRT interpreter on the host and prints benchmark_model's own
line formats (TF 2.x with INFO: prefixes, as in tests/data/benchmark_logs/tf2_cpu_memory_delta.txt).
This device has no GPU and no NNAPI: asking for them fails the way the real tool does when a
delegate cannot be applied. The test writes this file out with a shebang naming its Python.
"""

import sys
import time

args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
graph = args.get("graph", "")
print("INFO: STARTING!")
print("INFO: Log parameter values verbosely: [0]")
print(f"INFO: Min num runs: [{args.get('num_runs', 50)}]")
print(f"INFO: Num threads: [{args.get('num_threads', 1)}]")
print(f"INFO: Graph: [{graph}]")
if args.get("use_gpu") == "true":
    print("INFO: Use gpu: [1]")
print(f"INFO: Loaded model {graph}", flush=True)
if args.get("use_gpu") == "true" or args.get("use_nnapi") == "true":
    name = "GPU" if args.get("use_gpu") == "true" else "NNAPI"
    if name == "GPU":
        print('ERROR: Can not open OpenCL library on this device - dlopen failed: library "libOpenCL.so" not found',
              file=sys.stderr)
    print(f"ERROR: Failed to apply {name} delegate.", file=sys.stderr)
    print("ERROR: Benchmarking failed.", file=sys.stderr)
    sys.exit(1)

from ai_edge_litert.interpreter import Interpreter  # noqa: E402

t0 = time.perf_counter()
it = Interpreter(model_path=graph, num_threads=int(args.get("num_threads", 1)))
it.allocate_tensors()
init_us = (time.perf_counter() - t0) * 1e6
print("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.")
print(f"INFO: Initialized session in {init_us / 1000:.3f}ms.")


def run(n):
    times = []
    for _ in range(n):
        s = time.perf_counter()
        it.invoke()
        times.append(int((time.perf_counter() - s) * 1e6))
    return times


def stats(t):
    avg = sum(t) / len(t)
    std = int((sum((x - avg) ** 2 for x in t) / len(t)) ** 0.5)
    return f"count={len(t)} first={t[0]} curr={t[-1]} min={min(t)} max={max(t)} avg={avg:g} std={std}"


warm = run(max(1, int(args.get("warmup_runs", 1))))
print("INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if "
      "exceeding 150 seconds.")
print("INFO: " + stats(warm) + "\n")
runs = run(int(args.get("num_runs", 50)))
print(f"INFO: Running benchmark for at least {args.get('num_runs', 50)} iterations and at least "
      f"{args.get('min_secs', 1)} seconds but terminate if exceeding 150 seconds.")
print("INFO: " + stats(runs) + "\n", flush=True)
if float(args.get("min_secs", 0) or 0) >= 30:  # a test's way to make a run take long
    time.sleep(float(args["min_secs"]))
print(f"INFO: Inference timings in us: Init: {int(init_us)}, First inference: {warm[0]}, "
      f"Warmup (avg): {sum(warm) / len(warm):g}, Inference (avg): {sum(runs) / len(runs):g}")
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
