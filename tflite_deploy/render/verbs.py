"""All terminal output: Rich tables and progress bars for what the API returns.

The CLI maps options onto one API call and hands the answer to a function here; nothing else
in the package prints.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence

from rich.console import Console
from rich.table import Table

from tflite_deploy.progress import ProgressCallback, ProgressEvent
from tflite_deploy.result import Result
from tflite_deploy.tflite.analysis import human_bytes
from tflite_deploy.tflite.records import ModelReport, Quantization


def fmt_bytes(n: Optional[float]) -> str:
    """The one byte formatter: 812 B, 5.43 KB, 1.20 MB (powers of 1000, as file sizes are quoted)."""
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return str(n)


@contextlib.contextmanager
def progress_bars(console: Console, disable: bool = False) -> Iterator[ProgressCallback]:
    """A ProgressCallback drawing one transient bar per stage (a spinner while the total is unknown)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True, disable=disable) as bars:
        tasks: dict[str, Any] = {}

        def show(e: ProgressEvent) -> None:
            if e.stage not in tasks:
                for t in tasks.values():
                    bars.update(t, visible=False)
                tasks[e.stage] = bars.add_task("", total=e.total)
            bars.update(tasks[e.stage], completed=e.done, total=e.total,
                        description=f"[bold]{e.stage}[/] {e.message}" if e.message else f"[bold]{e.stage}[/]")

        yield show


def ms(v: Optional[float]) -> str:
    if v is None:
        return "-"
    if v < 1:
        return f"{v * 1000:.1f} µs"
    return f"{v:.2f} ms" if v < 1000 else f"{v / 1000:.2f} s"


def _name(r: Result) -> str:
    return Path(r.artifact).name


def file_labels(paths: Sequence[str]) -> dict[str, str]:
    """The shortest path tail that tells each file apart: ``a.int8.tflite``, or ``v1/a.int8.tflite`` and
    ``v2/a.int8.tflite`` when two folders hold files of the same name."""
    parts = {p: Path(p).parts for p in paths}
    labels = {}
    for p, ps in parts.items():
        n = 1
        while n < len(ps) and any(q != p and qs[-n:] == ps[-n:] for q, qs in parts.items()):
            n += 1
        labels[p] = "/".join(ps[-n:])
    return labels


def bench_report(results: Sequence[Result], console: Console) -> None:
    """Per file, hyperfine's shape; then one table with ratios against the first file."""
    label = file_labels([r.artifact for r in results])
    for r in results:
        head = f"[bold]{label[r.artifact]}[/]  [dim]{r.target} · {r.delegate} · {r.settings.get('threads') or '?'} thread(s)[/]"
        console.print(head)
        if not r.ok or r.latency is None:
            console.print(f"  [red]{r.status}[/]: {r.error}")
            continue
        lat = r.latency
        console.print(f"  Time ([green]mean[/] ± [green]σ[/]):   [green]{ms(lat.mean_ms)}[/] ± {ms(lat.std_ms)}"
                      f"    [dim]p50[/] {ms(lat.p50_ms)}  [dim]p90[/] {ms(lat.p90_ms)}  [dim]p99[/] {ms(lat.p99_ms)}")
        console.print(f"  Range ([cyan]min[/] … [magenta]max[/]): [cyan]{ms(lat.min_ms)}[/] … "
                      f"[magenta]{ms(lat.max_ms)}[/]    {lat.count} runs")
        warm = f"{ms(r.warmup.mean_ms)} mean of {r.warmup.count}" if r.warmup and r.warmup.count else "-"
        mem = (f"init +{r.init_memory_mb:.1f} MB" if r.init_memory_mb is not None else "") + \
              (f", peak {r.peak_memory_mb:.1f} MB" if r.peak_memory_mb is not None else "")
        console.print(f"  Init {ms(r.init_ms)} · first {ms(r.first_ms)} · warm-up {warm} · memory {mem or '-'}")
        if r.coverage and r.coverage.message:
            console.print(f"  [dim]{r.coverage.message}[/]")
        for w in r.warnings:
            console.print(f"  [yellow]Warning:[/] {w}")
        console.print()
    ok = [r for r in results if r.ok and r.latency and r.latency.p50_ms]
    if len(ok) > 1:
        base = ok[0]
        t = Table(title=f"Summary (ratios of p50 against {label[base.artifact]})", title_justify="left")
        for col in ("model", "p50", "mean ± σ", "× vs first"):
            t.add_column(col, justify="left" if col == "model" else "right")
        for r in ok:
            ratio = r.latency.p50_ms / base.latency.p50_ms  # type: ignore[union-attr,operator]
            faster = f"{ratio:.2f}x" + (" [green](faster)[/]" if ratio < 0.95 else " [red](slower)[/]" if ratio > 1.05 else "")
            name = f"{r.recipe} ({label[r.artifact]})" if r.recipe else label[r.artifact]
            t.add_row(name, ms(r.latency.p50_ms),  # type: ignore[union-attr]
                      f"{ms(r.latency.mean_ms)} ± {ms(r.latency.std_ms)}", faster)  # type: ignore[union-attr]
        console.print(t)


def _pct(v: Optional[float]) -> str:
    return "-" if v is None else f"{v:.2f}%"


def eval_report(results: Sequence[Result], console: Console) -> None:
    ref, variants = results[0], results[1:]
    s = ref.settings
    rm = ref.metrics
    task_text = ""
    if "top1" in rm:
        task_text = (f": top-1 {_pct(rm.get('top1'))} "
                     f"[dim](95% CI {_pct(rm['top1_ci95'][0])} … {_pct(rm['top1_ci95'][1])})[/]")
    elif "mae" in rm:
        task_text = f": MAE {rm['mae']:.4g}, RMSE {rm['rmse']:.4g}"
    on = f" (output {s['task_output']})" if s.get("task_output") else ""
    console.print(f"Reference [bold]{_name(ref)}[/] on [bold]{s.get('dataset')}[/] ({s.get('samples')} samples)"
                  + task_text + on + (" [dim](outputs from the cache)[/]" if s.get("reference_cached") else ""))
    labelled, regressed = "top1" in rm, "mae" in rm
    t = Table(title_justify="left")
    cols = ["variant"] + (["top-1", "drop, points (95% CI)"] if labelled else []) + \
        (["MAE", "RMSE", "MAE change (95% CI)"] if regressed else []) + ["agree", "SQNR dB", "max |err|"]
    for c in cols:
        t.add_column(c, justify="left" if c == "variant" else "right")
    label = file_labels([r.artifact for r in results])
    for r in variants:
        m = r.metrics
        row = [f"{r.recipe} ({label[r.artifact]})" if r.recipe else label[r.artifact]]
        if labelled:
            lo, hi = m["top1_drop_ci95"]
            colour = "green" if hi <= 1.0 else "yellow" if lo <= 1.0 else "red"
            row += [_pct(m.get("top1")), f"[{colour}]{m['top1_drop']:+.2f} ({lo:+.2f} … {hi:+.2f})[/]"]
        if regressed:
            lo, hi = m["mae_change_ci95"]
            row += [f"{m['mae']:.4g}", f"{m['rmse']:.4g}", f"{m['mae_change']:+.3g} ({lo:+.3g} … {hi:+.3g})"]
        row += [_pct(100 * m["label_agreement"]) if "label_agreement" in m else "-",
                "∞" if m["sqnr_db"] is None else f"{m['sqnr_db']:.1f}", f"{m['max_abs_error']:.3g}"]
        t.add_row(*row)
    console.print(t)
    per_output = [r for r in variants if r.metrics.get("outputs")]
    if per_output:
        t = Table(title="Each output against the reference", title_justify="left")
        for c in ("variant", "output", "SQNR dB", "max |err|", "NaN/Inf"):
            t.add_column(c, justify="left" if c in ("variant", "output") else "right")
        for r in per_output:
            for name, m in r.metrics["outputs"].items():
                sq = m.get("sqnr_db")
                t.add_row(r.recipe or label[r.artifact], name, "∞" if sq is None or sq == float("inf") else f"{sq:.1f}",
                          f"{m['max_abs_error']:.3g}", str(m.get("nonfinite", 0)))
        console.print(t)
    for r in results:
        for w in r.warnings:
            console.print(f"[yellow]{label[r.artifact]}:[/] {w}", highlight=False)
    if labelled:
        console.print("[dim]drop = reference top-1 minus variant top-1 on the same samples; the interval is a "
                      "paired bootstrap. An interval that holds 0 means no measurable loss on this data.[/]")
    if regressed:
        console.print("[dim]MAE change = variant MAE minus reference MAE against the targets, on the same samples "
                      "(paired bootstrap); positive is worse.[/]")


def layer_report(name: str, layers: Sequence, console: Console, top: int = 15) -> None:
    t = Table(title=f"Per-layer quantization error of {name} (worst first, QuantizationDebugger)",
              title_justify="left")
    for c in ("op", "layer (output tensor)", "RMSE/scale", "RMSE", "mean err", "max |err|", "scale"):
        t.add_column(c, justify="left" if c in ("op", "layer (output tensor)") else "right")
    for e in list(layers)[:top]:
        rs = e.rmse_over_scale
        colour = "red" if rs > 1 else "yellow" if rs > 0.5 else "green"
        t.add_row(e.op_name, e.tensor_name.split(";")[0][-60:], f"[{colour}]{rs:.3f}[/]", f"{e.rmse:.3g}",
                  f"{e.mean_error:+.3g}", f"{e.max_abs_error:.3g}", f"{e.scale:.3g}")
    console.print(t)
    console.print("[dim]RMSE/scale ≈ 0.29 is pure rounding noise; layers well above 1 are candidates for "
                  "float_layers in a recipe (selective quantization).[/]")


def demo_story(demo: Any, console: Console) -> None:
    """``demo``: the model trained, every variant measured side by side, and what to try next."""
    console.print(f"Trained [bold]{demo.model}[/]: float test accuracy {demo.float_accuracy:.1%} on digits:test")
    demo_report(demo.artifacts, demo.evals[1:], demo.benches, console)
    console.print(f"Next: [bold]tflite-deploy inspect {demo.artifacts[2].path}[/], "
                  f"[bold]tflite-deploy eval {demo.model} {demo.artifacts[2].path} -d digits:test --per-layer[/]")


def eval_with_layers(results: Sequence[Result], layers: Mapping[str, Sequence], per_layer: bool,
                     console: Console) -> None:
    """``eval``: the accuracy table, then per variant its per-layer errors when they were asked for."""
    eval_report(results, console)
    for path, rows in layers.items():
        layer_report(Path(path).name, rows, console)
    if per_layer and not layers:
        console.print("[dim]--per-layer: no full-integer variant with a sidecar among the models given.[/]")


def demo_report(artifacts: Sequence, evals: Sequence[Result], benches: Sequence[Result], console: Console) -> None:
    """One table: each variant's size, accuracy cost and latency, all measured in this run."""
    from rich import box

    base = artifacts[0]
    base_p50 = benches[0].latency.p50_ms if benches[0].latency else None
    t = Table(title="Every variant, measured side by side", title_justify="left", box=box.SIMPLE_HEAD,
              pad_edge=False)
    for c in ("recipe", "size", "smaller", "top-1", "drop [95% CI]", "SQNR dB", "p50", "vs f32"):
        t.add_column(c, justify="left" if c == "recipe" else "right", no_wrap=True)
    for a, e, b in zip(artifacts, evals, benches):
        m = e.metrics
        lo, hi = m.get("top1_drop_ci95", (None, None))
        p50 = b.latency.p50_ms if b.latency else None
        t.add_row(a.recipe, f"{a.size_bytes / 1000:.0f} KB", f"{base.size_bytes / a.size_bytes:.2f}x",
                  _pct(m.get("top1")),
                  "-" if lo is None else f"{m['top1_drop']:+.2f} [{lo:.2f},{hi:.2f}]",
                  "∞" if m.get("sqnr_db") is None else f"{m['sqnr_db']:.0f}", ms(p50),
                  "-" if not (p50 and base_p50) else f"{p50 / base_p50:.2f}x")
    console.print(t)
    console.print("[dim]drop: points of top-1 lost against the Keras model on the same 359 test digits (paired "
                  "bootstrap). Latency: LiteRT + XNNPACK on this machine, 1 thread; the digits CNN is tiny, so "
                  "its times are mostly interpreter overhead (see tools/bench_host_modes.py for MobileNet).[/]")
    for b in benches:
        for w in b.warnings:
            if "SLOWER" in w or "XNNPACK" in w:
                console.print(f"[yellow]{Path(b.artifact).name}:[/] {w}")
    for b in benches:
        if b.coverage and b.coverage.applied is False:
            console.print(f"[yellow]{Path(b.artifact).name}:[/] {b.coverage.message}")


def recipes_table(recipes: Sequence[Any], patterns: Sequence[tuple[str, str]], console: Console) -> None:
    t = Table(title="Recipes", title_justify="left")
    for col in ("name", "what it makes", "calibrates", "description"):
        t.add_column(col)
    for r in recipes:
        t.add_row(r.name, r.summary(), "yes" if r.needs_calibration else "no", r.description)
    console.print(t)
    t = Table(title="Optimization recipes, made from their names (trained on --data)", title_justify="left")
    for col in ("name pattern", "what it makes"):
        t.add_column(col)
    for name, what in patterns:
        t.add_row(name, what)
    console.print(t)


def conversion_table(rows: Sequence[dict], console: Console) -> None:
    """Sizes of a convert run (rows from ``render.items.convert_items``); failed recipes are
    rows marked FAILED, their reasons printed below the table."""
    made = [r for r in rows if not r.get("failed")]
    where = f" in {Path(made[0]['path']).parent}" if made else ""
    t = Table(title=f"{rows[0]['model']}: {len(made)} of {len(rows)} variant(s){where}", title_justify="left")
    for col, just in (("recipe", "left"), ("what it is", "left"), ("size", "right"), ("gzipped", "right"),
                      ("x smaller", "right"), ("x smaller gz", "right"), ("time", "right")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in rows:
        if r.get("failed"):
            t.add_row(f"[red]{r['recipe']}[/]", r["summary"], "[red]FAILED[/]", "-", "-", "-", "-")
            continue
        t.add_row(r["recipe"], r["summary"], fmt_bytes(r["size_bytes"]), fmt_bytes(r["gzip_bytes"]),
                  "-" if r["ratio"] is None else f"{r['ratio']:.2f}x",
                  "-" if r["gzip_ratio"] is None else f"{r['gzip_ratio']:.2f}x", f"{r['seconds']:.1f} s")
    console.print(t)
    for r in rows:
        if r.get("failed"):
            console.print(f"[red]{r['recipe']} failed:[/] {r['error']}", highlight=False)
    for r in made:  # what the converter had to do, or left in float, said once per variant
        for w in r.get("warnings") or []:
            console.print(f"[yellow]{r['recipe']}:[/] {w}", highlight=False)
    if made and all(r["ratio"] is None for r in made):
        console.print("[dim]Add --recipe float32 to see each variant's ratio to the float model.[/]")


def inspect_report(report: Any, console: Console, top: int = 10) -> None:
    render_report(report, console, top=top)


def devices_table(found: Sequence[Any], console: Console) -> None:
    if not found:
        console.print("No Android device found. Plug one in with USB debugging on, or `adb connect HOST:PORT`.")
        return
    t = Table(title="Android devices", title_justify="left")
    for col in ("serial", "state", "model", "SoC / board", "ABIs", "Android", "emulator"):
        t.add_column(col)
    for d in found:
        t.add_row(d.serial, d.state if d.usable else f"[red]{d.state}[/]",
                  " ".join(x for x in (d.manufacturer, d.model) if x) or "-", d.soc or d.board or "-",
                  ",".join(d.abis) or "-", f"{d.android_release} (SDK {d.sdk})" if d.sdk else "-",
                  "yes" if d.is_emulator else "no")
    console.print(t)
    for d in found:
        if d.hint:
            console.print(f"[yellow]{d.serial}:[/] {d.hint}")


def optimize_report(r: Any, console: Console) -> None:
    """What ``optimize`` trained, the files it wrote (measured in the .tflite) and the accuracy."""
    from tflite_deploy.optimization.verify import layer_rows

    resumed = "; ".join(f"{s.kind} resumed after epoch {s.resumed_from}" for s in r.stages if s.resumed_from)
    console.print(f"[bold]{r.tag}[/] of {r.model}: {' -> '.join(s.kind for s in r.stages)}, {r.stages[0].epochs} "
              f"epoch(s) each on {r.data}, strategy {r.strategy} x{r.replicas}, {r.seconds:.0f} s"
              + (f"; {resumed}" if resumed else ""), highlight=False)
    for note in r.notes:
        console.print(f"[yellow]{note}[/]", highlight=False)
    if r.skipped_layers:
        console.print(f"[yellow]Left as they are (TF-MOT cannot wrap them):[/] {', '.join(r.skipped_layers)}")
    if r.accuracy:
        t = Table(title=f"Accuracy on {r.eval_data}", title_justify="left")
        for col, just in (("model", "left"), ("top-1", "right"), ("95% CI", "right"), ("drop vs float", "right"),
                          ("95% CI of drop", "right")):
            t.add_column(col, justify=just)  # type: ignore[arg-type]
        for a in r.accuracy:
            t.add_row(a.name, f"{a.top1:.2f}%", f"{a.top1_ci95[0]:.1f} … {a.top1_ci95[1]:.1f}",
                      "-" if a.drop is None else f"{a.drop:+.2f}",
                      "-" if a.drop_ci95 is None else f"{a.drop_ci95[0]:+.2f} … {a.drop_ci95[1]:+.2f}")
        console.print(t)
        if r.vs_ptq is not None:
            d, lo, hi = r.vs_ptq
            verdict = "better than" if hi < 0 else "worse than" if lo > 0 else "within noise of"
            console.print(f"{r.tag}-int8 is {verdict} int8 PTQ: PTQ minus it {d:+.2f} points (95% CI {lo:+.2f} … "
                      f"{hi:+.2f}, paired bootstrap).", highlight=False)
    ptq = r.files.get("ptq-int8")
    t = Table(title=f"Files in {Path(r.report_path).parent}, measured in the .tflite", title_justify="left")
    for col, just in (("file", "left"), ("size", "right"), ("gzipped", "right"), ("gz vs PTQ", "right"),
                      ("sparsity (target)", "right"), ("unique/kernel (target)", "right")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for role, f in r.files.items():
        v = r.verification[role]
        mine = role != "ptq-int8"
        sp = v.sparsity(r.pruned_layers or None)
        target = f" ({r.target_sparsity:g}%)" if r.target_sparsity is not None and mine else ""
        uniq = "-"
        if r.clustered_layers and v.select(r.clustered_layers):
            uniq = f"≤{v.max_unique(r.clustered_layers)}" + (f" ({r.target_clusters})" if mine else "")
        t.add_row(Path(f["path"]).name, fmt_bytes(f["size_bytes"]), fmt_bytes(f["gzip_bytes"]),
                  f"{ptq['gzip_bytes'] / f['gzip_bytes']:.2f}x" if ptq else "-",
                  "-" if sp is None else f"{100 * sp:.1f}%{target}", uniq)
    console.print(t)
    v8 = r.verification["optimized-int8"]
    t = Table(title=f"Kernels of {Path(v8.path).name}", title_justify="left")
    for col, just in (("layer", "left"), ("optimized", "left"), ("op", "left"), ("shape", "left"),
                      ("scales", "left"), ("sparsity", "right"), ("unique", "right")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    known = [*r.pruned_layers, *r.clustered_layers, *(w for s in r.stages for w in s.wrapped_layers)]
    for row in layer_rows(v8, known):
        marks = [m for m, names in (("pruned", r.pruned_layers), ("clustered", r.clustered_layers))
                 if row["layer"] in names]
        scales = "channel" if row["per_channel"] else "tensor" if row["dtype"] == "INT8" else row["dtype"].lower()
        t.add_row(row["layer"], ", ".join(marks) or "-", row["op"].replace("_CONV_2D", "_CONV")
                  .replace("FULLY_CONNECTED", "FC"), "x".join(map(str, row["shape"])), scales,
                  f"{100 * row['sparsity']:.1f}%", f"{row['unique_values']}" + ("/ch" if row["per_channel"] else ""))
    console.print(t)
    console.print(f"[dim]Report {r.report_path}; checkpoints {r.checkpoints}"
                  + (f"; model {r.keras_model}" if r.keras_model else "") + "[/]", highlight=False)


# ============================================================================================
# The .tflite inspect report (reads tflite_deploy.tflite)
# ============================================================================================


def _quant_text(q: Optional[Quantization]) -> str:
    if q is None:
        return "-"
    if q.per_channel:
        return f"{q.num_scales} scales (axis {q.quantized_dimension})"
    return f"scale {q.scales[0]:.6g}, zero point {q.zero_point}"


def _shape_text(shape: Sequence[int]) -> str:
    return "[" + ", ".join("?" if d < 0 else str(d) for d in shape) + "]"


def _short(name: str, width: int = 60) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def render_report(report: ModelReport, console: Any = None, *, top: int = 10) -> None:
    """Print ``report`` as Rich tables on ``console`` (a new ``rich.console.Console`` if None)."""
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    q = report.quantization
    share = (100.0 * report.constant_bytes / report.file_size) if report.file_size else 0.0
    console.print(f"[bold]{escape(report.path)}[/bold]  {human_bytes(report.file_size)}")
    console.print(f"  [bold]{escape(q.label)}[/bold]")
    qp = (f", quantization parameters {human_bytes(report.quantization_param_bytes)}"
          if report.quantization_param_bytes else "")
    console.print(f"  {report.op_count} ops, {report.tensor_count} tensors, "
                  f"{report.subgraphs} subgraph(s); constants {human_bytes(report.constant_bytes)} "
                  f"({share:.0f}% of the file){qp}; schema v{report.schema_version}")
    if q.weight_dtypes:
        parts = []
        for w in q.weight_dtypes:
            pc = f", {w.per_channel_tensors} per-channel" if w.per_channel_tensors else ""
            roles = "biases" if w.role == "bias" else w.role + "s"
            n = f"{w.tensors} tensor{'s' if w.tensors != 1 else ''}"
            parts.append(f"{w.dtype} {roles} {human_bytes(w.bytes)} ({n}{pc})")
        console.print("  " + escape("; ".join(parts)))

    t = Table(title="Inputs and outputs", box=box.SIMPLE_HEAVY, title_justify="left")
    for col in ("", "tensor", "signature name", "shape", "dtype", "quantization"):
        t.add_column(col)
    for kind, items in (("in", report.inputs), ("out", report.outputs)):
        for ti in items:
            t.add_row(kind, escape(_short(ti.name, 48)), escape(ti.signature_name or "-"),
                      _shape_text(ti.shape), ti.dtype, _quant_text(ti.quantization))
    console.print(t)

    marks: dict[str, dict[str, bool]] = {}
    for d in report.delegates:
        bad = set(d.unsupported_ops)
        marks[d.target] = {name: name not in bad for name in report.op_histogram}
    t = Table(title="Ops", box=box.SIMPLE_HEAVY, title_justify="left")
    t.add_column("op")
    t.add_column("count", justify="right")
    headers = {"int8": "int8 kernel", "int16x8": "int16x8 kernel", "gpu": "GPU",
               "xnnpack": "XNNPACK"}
    for d in report.delegates:
        t.add_column(headers.get(d.target, d.target), justify="center")
    for name, count in report.op_histogram.items():
        t.add_row(escape(name), str(count),
                  *["[green]yes[/green]" if marks[d.target][name] else "[red]no[/red]"
                    for d in report.delegates])
    console.print(t)

    layers = sorted((l for l in report.layers if l.weight_bytes), key=lambda l: -l.weight_bytes)
    if layers:
        total = sum(l.weight_bytes for l in report.layers) or 1
        t = Table(title=f"Weights by layer (top {min(top, len(layers))} of {len(layers)})",
                  box=box.SIMPLE_HEAVY, title_justify="left")
        for col, just in (("op", "left"), ("layer (output tensor)", "left"),
                          ("constants", "left"), ("bytes", "right"), ("share", "right")):
            t.add_column(col, justify=just)
        for l in layers[:top]:
            desc = []
            for w in l.weights:
                s = f"{w.dtype}{_shape_text(w.shape)}"
                if w.num_scales > 1:
                    s += f" ({w.num_scales} scales)"
                if w.via:
                    s += f" via {w.via}"
                desc.append(s)
            t.add_row(l.op, escape(_short(l.name, 48)), escape(", ".join(desc)),
                      human_bytes(l.weight_bytes), f"{100.0 * l.weight_bytes / total:.0f}%")
        console.print(t)

    if report.per_channel_tensors:
        pcs = sorted(report.per_channel_tensors,
                     key=lambda p: (p.one_scale_per_channel, p.role != "weight"))
        t = Table(title=f"Per-channel quantized tensors ({len(pcs)})", box=box.SIMPLE_HEAVY,
                  title_justify="left")
        for col in ("tensor", "role", "dtype", "shape", "scales", "axis", "one per channel"):
            t.add_column(col)
        for p in pcs[:top]:
            t.add_row(escape(_short(p.name, 48)), p.role, p.dtype, _shape_text(p.shape),
                      str(p.num_scales), str(p.quantized_dimension),
                      "yes" if p.one_scale_per_channel else "[red]no[/red]")
        if len(pcs) > top:
            rest = pcs[top:]
            ok = sum(p.one_scale_per_channel for p in rest)
            roles = Counter(p.role for p in rest)
            t.add_row(f"... {len(rest)} more", ", ".join(f"{n} {r}" for r, n in roles.items()),
                      "", "", "", "", f"{ok} of {len(rest)}")
        console.print(t)
    elif q.kind not in ("float32", "float16", "other"):
        console.print("No per-channel quantized tensors (per-tensor quantization).")

    t = Table(title="Kernel and delegate support (published op lists)", box=box.SIMPLE_HEAVY,
              title_justify="left")
    for col in ("backend", "ops taken", "not taken"):
        t.add_column(col)
    for d in report.delegates:
        verdict = ("[green]all[/green]" if d.supported
                   else f"[yellow]{d.ops_supported} of {d.ops_checked}[/yellow]")
        missing = "; ".join(f"{u.op} x{u.count}: {u.reason}" for u in d.unsupported) or "-"
        t.add_row(escape(d.title), verdict, escape(missing))
    console.print(t)

    for n in q.notes + report.notes:
        console.print(f"  [dim]-[/dim] {escape(n)}")
