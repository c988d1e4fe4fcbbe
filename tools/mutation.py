"""Mutation testing of the pure modules with mutmut: do the tests fail when the code is wrong?

    .venv/bin/python tools/mutation.py                  # every target, one after the other
    .venv/bin/python tools/mutation.py stats parse      # some targets
    .venv/bin/python tools/mutation.py --survivors      # also list (and diff) the surviving mutants
    .venv/bin/python tools/mutation.py --report-only    # re-print the table from the last runs

Each target runs in its own scratch folder (build/mutation/TARGET/, a copy of the package and the
tests) with a [tool.mutmut] that selects only the test files relevant to it, so mutmut's first
pass (which maps tests to functions) runs seconds of tests, not the whole suite. The common
mutmut settings come from pyproject's [tool.mutmut]. Goal: at least 90% killed per target; the
surviving mutants judged harmless (equivalent) are listed in EQUIVALENT with the reason.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRATCH = REPO / "build" / "mutation"


@dataclass(frozen=True)
class Target:
    file: str  # the module mutated, relative to the repo
    functions: tuple[str, ...]  # globs on function names; ("*",) for the whole module
    tests: tuple[str, ...]  # test files (or node ids) that judge it

    @property
    def module(self) -> str:
        return self.file.removesuffix(".py").replace("/", ".")

    def patterns(self) -> list[str]:
        """mutmut mutant-name globs: module.x_FUNCTION__mutmut_N (module-level functions)."""
        if self.functions == ("*",):
            return [f"{self.module}.*"]
        return [f"{self.module}.x_{f}__mutmut_*" for f in self.functions]


TARGETS: dict[str, Target] = {
    # the log parser, one module of the benchmark/parse package at a time
    **{f"parse.{m}": Target(f"tflite_deploy/benchmark/parse/{m}.py", ("*",),
                            ("tests/test_parse.py", "tests/test_parse_rules.py", "tests/test_parse_log_rules.py"))
       for m in ("lines", "classic", "litert", "profiling", "log", "result")},
    "stats": Target("tflite_deploy/benchmark/stats.py", ("*",),
                    ("tests/test_stats_metrics_quant_by_hand.py",)),
    "recipes": Target("tflite_deploy/recipes.py", ("*",),
                      tuple(f"tests/test_recipes_datasets.py::{t}" for t in (
                          "test_presets_are_data_not_names", "test_yaml_and_toml_recipe_files",
                          "test_bad_recipe_files_are_named", "test_unknown_recipe_lists_the_known_ones"))
                      + ("tests/test_recipe_rules.py",)),
    # the quantize math; Quantization is a plain dataclass
    "quantize": Target("tflite_deploy/tflite/quant.py", ("quantize", "dequantize", "_broadcast_params"),
                       ("tests/test_stats_metrics_quant_by_hand.py",)),
    "metrics": Target("tflite_deploy/evaluation/run.py",
                      ("agreement", "topk_correct", "paired_bootstrap", "bootstrap_interval"),
                      ("tests/test_stats_metrics_quant_by_hand.py",)),
}

# Surviving mutants judged harmless: mutant name -> why no test can (or should) tell them apart.
_F64 = "astype/asarray with dtype None gives float64 here too (float input or Python floats)"
_LOCALE = ("encoding omitted: the locale's, which is UTF-8 wherever this runs (Python 3.11 coerces even the C "
           "locale, PEP 538/540); not equivalent on a Windows cp1252 locale")
_HANDED_ON = ("the line, {}, handed on to feed's later rules, matches none of them (they look for the "
              "tool's sentences), and the tool prints it at INFO level, so it is no error line either")
_FALSY = ("a flag set to None instead of False: it is only ever tested for truth (if x, not x, x or y), "
          "never compared or stored")
EQUIVALENT: dict[str, str] = {
    "tflite_deploy.evaluation.run.x_agreement__mutmut_2": _F64,
    "tflite_deploy.evaluation.run.x_agreement__mutmut_10": _F64,
    "tflite_deploy.evaluation.run.x_agreement__mutmut_8": "reshape(n, -2): numpy takes any negative size as 'infer'",
    "tflite_deploy.evaluation.run.x_agreement__mutmut_16": "reshape(n, -2): numpy takes any negative size as 'infer'",
    "tflite_deploy.evaluation.run.x_agreement__mutmut_63": "only changes the divisor where the outer where() discards it",
    "tflite_deploy.evaluation.run.x_agreement__mutmut_65": "only changes the divisor where the outer where() discards it",
    "tflite_deploy.evaluation.run.x_agreement__mutmut_89": "float('INF') == float('inf')",
    "tflite_deploy.evaluation.run.x_agreement__mutmut_101": "float('-INF') == float('-inf')",
    "tflite_deploy.evaluation.run.x_agreement__mutmut_93": "signal 0 and noise > 0: log10(0 / noise) is -inf anyway",
    "tflite_deploy.evaluation.run.x_bootstrap_interval__mutmut_6": _F64,
    "tflite_deploy.evaluation.run.x_bootstrap_interval__mutmut_11": "rng.integers(n) is rng.integers(0, n), same stream",
    "tflite_deploy.evaluation.run.x_paired_bootstrap__mutmut_8": "bool minus float64 is float64 whatever astype(None) gives",
    "tflite_deploy.evaluation.run.x_paired_bootstrap__mutmut_9": "bool minus float64 is float64 whatever astype(None) gives",
    "tflite_deploy.evaluation.run.x_paired_bootstrap__mutmut_24": "rng.integers(n) is rng.integers(0, n), same stream",
    "tflite_deploy.evaluation.run.x_topk_correct__mutmut_13": "argpartition's default axis -1 is axis 1 of a 2-D array",
    "tflite_deploy.evaluation.run.x_topk_correct__mutmut_16": "kth=k-2: numpy's introselect still leaves the k largest "
    "first (no counter-example in 20,000 random permutations, n 2..40); not equivalent in principle",
    "tflite_deploy.recipes.x_load_recipe_file__mutmut_11": "codec names are case-insensitive: 'UTF-8' is 'utf-8'",
    "tflite_deploy.recipes.x_load_recipe_file__mutmut_36": "lstrip('XX.XX') strips the same '.' from .yaml/.yml/.toml "
    "(only a suffix starting with X would differ, and those are refused before)",
    "tflite_deploy.recipes.x_load_recipe_file__mutmut_6": _LOCALE,
    "tflite_deploy.recipes.x_load_recipe_file__mutmut_8": _LOCALE,
    # the log parser's op-profiling tables
    "tflite_deploy.benchmark.parse.profiling.x__cell__mutmut_8": "rstrip('XX%XX') also strips 'X', and a cell "
    "that matched _FLOAT has none",
    "tflite_deploy.benchmark.parse.profiling.x__column_key__mutmut_8": "'XX pctXX' after lower(): the upper-case "
    "X are outside [a-z0-9] and become the same '_' separators",
    "tflite_deploy.benchmark.parse.profiling.x__column_key__mutmut_20": "strip('XX_XX') also strips 'X', and the "
    "key is lower case by then",
    **{f"tflite_deploy.benchmark.parse.profiling.xǁTableReaderǁ_table_row__mutmut_{n}": "zip's strict: the "
       "cells were just counted equal to the columns" for n in (40, 43, 46)},
    "tflite_deploy.benchmark.parse.profiling.xǁTableReaderǁ_table_row__mutmut_14": _HANDED_ON.format("a header "
    "row (bracketed names)"),
    "tflite_deploy.benchmark.parse.profiling.xǁTableReaderǁ_table_row__mutmut_47": _HANDED_ON.format("a table row "
    "(node names and numbers)"),
    "tflite_deploy.benchmark.parse.profiling.xǁTableReaderǁ_profiling__mutmut_16": _HANDED_ON.format("a section "
    "line ('Profiling Info for ..:')") + "; only 'recognised' is left unset, and the title line that always "
    "follows a section sets it",
    # the log parser's line-by-line state
    "tflite_deploy.benchmark.parse.log.x_parse_benchmark_log__mutmut_4": "bytes.decode() is UTF-8 by default "
    "(always, in Python 3; not the locale's)",
    "tflite_deploy.benchmark.parse.log.x_parse_benchmark_log__mutmut_8": "codec names are case-insensitive: "
    "'UTF-8' is 'utf-8'",
    **{f"tflite_deploy.benchmark.parse.log.xǁ_Parserǁ__init____mutmut_{n}": _FALSY for n in (8, 10, 12, 14, 16, 21)},
    **{f"tflite_deploy.benchmark.parse.log.xǁ_Parserǁfeed__mutmut_{n}": _FALSY for n in (15, 19)},
    "tflite_deploy.benchmark.parse.log.xǁ_Parserǁfinish__mutmut_5": "bool(pop('complete', None)) is "
    "bool(pop('complete', False)) when the key is absent",
    "tflite_deploy.tflite.quant.x__broadcast_params__mutmut_3": _F64,
    "tflite_deploy.tflite.quant.x__broadcast_params__mutmut_5": _F64,
    "tflite_deploy.tflite.quant.x__broadcast_params__mutmut_8": "int64 zero points: every use adds or subtracts them to or from float64",
    "tflite_deploy.tflite.quant.x__broadcast_params__mutmut_10": "int64 zero points: every use adds or subtracts them to or from float64",
    "tflite_deploy.tflite.quant.x__broadcast_params__mutmut_17": "repeating one zero point once changes nothing",
    "tflite_deploy.tflite.quant.x_dequantize__mutmut_15": _F64,
    "tflite_deploy.tflite.quant.x_quantize__mutmut_14": "a dtype kind is one character; no numpy kind is 'X'",
    "tflite_deploy.tflite.quant.x_quantize__mutmut_28": _F64,
    "tflite_deploy.tflite.quant.x_quantize__mutmut_9": "_NUMPY_DTYPES maps every name to itself: the fallback gives "
    "the same dtype",
}


def _toml_list(items) -> str:
    return json.dumps([str(i) for i in items])


def prepare(name: str, t: Target) -> Path:
    """A scratch copy of the package and tests, with a pyproject that configures mutmut for ``t``."""
    work = SCRATCH / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "tflite_deploy", work / "tflite_deploy", ignore=skip)
    shutil.copytree(REPO / "tests", work / "tests", ignore=skip)
    base = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]
    mut = dict(base.get("mutmut", {}))
    mut["only_mutate"] = [t.file]
    mut["pytest_add_cli_args_test_selection"] = list(t.tests)
    lines = ["[tool.mutmut]"]
    for key, value in mut.items():
        lines.append(f"{key} = {_toml_list(value) if isinstance(value, list) else json.dumps(value)}")
    py = base.get("pytest", {}).get("ini_options", {})
    lines += ["", "[tool.pytest.ini_options]"]
    for key, value in py.items():
        lines.append(f"{key} = {_toml_list(value) if isinstance(value, list) else json.dumps(value)}")
    (work / "pyproject.toml").write_text("\n".join(lines) + "\n")
    return work


def mutmut(work: Path, *args: str, capture: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=work, env=env, text=True,
                          capture_output=capture, stdin=subprocess.DEVNULL)


def statuses(name: str, t: Target) -> dict[str, str]:
    """{mutant name: status} for the target's functions, from mutmut's saved results."""
    work = SCRATCH / name
    if not (work / "mutants").is_dir():
        return {}
    out = mutmut(work, "results", "--all", "true", capture=True).stdout
    found = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+): (.+)$", line)
        if m and any(fnmatch.fnmatchcase(m.group(1), p) for p in t.patterns()):
            found[m.group(1)] = m.group(2).strip()
    return found


def table(names: list[str]) -> tuple[str, bool]:
    """Per target: mutants, killed, survived, timeout, other (no tests, suspicious...), the survivors
    judged equivalent, % killed of all mutants and of the non-equivalent ones (the goal: >= 90)."""
    rows = [("target", "module", "mutants", "killed", "survived", "timeout", "other", "equivalent",
             "% killed", "% killed (non-equiv.)")]
    ok = True
    for name in names:
        t = TARGETS[name]
        st = statuses(name, t)
        n = len(st)
        killed = sum(s == "killed" for s in st.values())
        survived = sum(s == "survived" for s in st.values())
        timeout = sum(s == "timeout" for s in st.values())
        other = n - killed - survived - timeout
        equivalent = sum(1 for m, s in st.items() if s == "survived" and m in EQUIVALENT)
        # a timeout is a mutant the tests caught too (it made them hang); mutmut counts it as killed
        caught = killed + timeout
        pct = 100 * caught / n if n else 0.0
        pct_real = 100 * caught / (n - equivalent) if n - equivalent else 0.0
        ok &= pct_real >= 90
        rows.append((name, t.module, str(n), str(killed), str(survived), str(timeout), str(other),
                     str(equivalent), f"{pct:.1f}", f"{pct_real:.1f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    text = "\n".join("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in rows)
    return text, ok


def survivors(names: list[str], diffs: bool) -> str:
    lines = []
    for name in names:
        t = TARGETS[name]
        for mutant, status in sorted(statuses(name, t).items()):
            if status in ("killed", "timeout"):
                continue
            why = EQUIVALENT.get(mutant)
            lines.append(f"{mutant}: {status}" + (f"  [equivalent: {why}]" if why else ""))
            if diffs and not why:
                shown = mutmut(SCRATCH / name, "show", mutant, capture=True).stdout
                lines += ["    " + x for x in shown.splitlines()[1:] if x.startswith(("+", "-")) and
                          not x.startswith(("+++", "---"))]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("targets", nargs="*", choices=[[], *TARGETS], help="targets (default: all)")
    ap.add_argument("--survivors", action="store_true", help="list the surviving mutants with their diffs")
    ap.add_argument("--report-only", action="store_true", help="print the table from the last runs")
    ap.add_argument("--max-children", type=int, default=2, help="parallel mutant workers (default 2)")
    args = ap.parse_args(argv)
    names = list(args.targets) or list(TARGETS)
    if not args.report_only:
        for name in names:
            t = TARGETS[name]
            work = prepare(name, t)
            print(f"== {name}: mutating {t.file} ({', '.join(t.functions)}) against {', '.join(t.tests)}",
                  flush=True)
            p = mutmut(work, "run", "--max-children", str(args.max_children), *t.patterns(), capture=True)
            if p.returncode != 0:
                print(p.stdout[-3000:], p.stderr[-3000:], sep="\n", file=sys.stderr)
                return p.returncode
    text, ok = table(names)
    print(text)
    if args.survivors:
        print("\nSurviving mutants:")
        print(survivors(names, diffs=True) or "(none)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
