"""ONNX as a source: ``onnx2tf`` turns the ``.onnx`` into a TensorFlow SavedModel, then our recipes.

onnx2tf (1.29.24, installed with ``--no-deps``: it pins older TensorFlow/numpy exactly) runs in a
child process so its chatter, its ``sys.exit`` on errors and its TensorFlow graph never reach ours;
its output is quoted only when it fails. Three of its habits are fenced off here:

- for 4-D 3-channel inputs it downloads sample images from GitHub (it does so even when given
  ``-cind`` data): the child runs in a scratch folder that already holds the file it looks for,
  made from *our* samples, and with an unreachable HTTP(S) proxy so no download can happen;
- it may rewrite the ``.onnx`` it is given: it gets a copy;
- it converts NCHW models to NHWC: the converted model takes channels-last input, and the ONNX
  Runtime reference (:mod:`tflite_deploy.sources.onnx_runtime`) transposes explicitly.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from tflite_deploy.errors import ModelError
from tflite_deploy.hashing import sha256_file
from tflite_deploy.sources.keras import SourceModel, load_model

#: The file onnx2tf downloads when it finds none in its working folder (utils/common_functions.py).
_ONNX2TF_SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"
_TIMEOUT_S = 1800


@dataclasses.dataclass(frozen=True)
class OnnxInput:
    """One input the ``.onnx`` file declares."""

    name: str
    shape: tuple[Any, ...]  # ints, or names/None for dynamic dimensions
    dtype: str


@dataclasses.dataclass(frozen=True)
class OnnxInfo:
    """What the ``.onnx`` file declares about its inputs (``input_*``: the first one's)."""

    opset: int
    input_name: str
    input_shape: tuple[Any, ...]  # ints, or names/None for dynamic dimensions
    input_dtype: str
    op_types: tuple[str, ...]
    inputs: tuple[OnnxInput, ...] = ()


def read_onnx(path: str | Path) -> OnnxInfo:
    """Load and check an ``.onnx`` file; errors name the file and what is wrong."""
    import onnx

    p = Path(path)
    if not p.is_file():
        raise ModelError(f"Model {p} does not exist.")
    try:
        model = onnx.load(str(p))
    except Exception as e:  # protobuf DecodeError and friends: a truncated or foreign file
        raise ModelError(f"Model {p} is not a readable ONNX file ({_first_line(e)}): truncated, or another "
                         "kind of file renamed?") from None
    if not model.graph.node:
        raise ModelError(f"Model {p} is not a usable ONNX model: its graph has no nodes (an empty or "
                         "foreign file?).")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    newest = onnx.defs.onnx_opset_version()
    if opset > newest:
        raise ModelError(f"Model {p} uses ONNX opset {opset}, newer than this installation knows (onnx "
                         f"{onnx.__version__} reads opsets up to {newest}). Export it with an older opset "
                         "(torch.onnx.export(..., opset_version=17)).")
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        raise ModelError(f"Model {p} is not a valid ONNX model: {_first_line(e)}") from None
    inits = {i.name for i in model.graph.initializer}
    declared = []
    for inp in (i for i in model.graph.input if i.name not in inits):
        ttype = inp.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in ttype.shape.dim)
        declared.append(OnnxInput(inp.name, dims, onnx.helper.tensor_dtype_to_np_dtype(ttype.elem_type).name))
    if not declared:
        raise ModelError(f"Model {p} declares no input: nothing to feed it.")
    first = declared[0]
    return OnnxInfo(opset, first.name, first.shape, first.dtype, tuple(sorted({n.op_type for n in model.graph.node})),
                    tuple(declared))


def unsupported_ops(info: OnnxInfo) -> list[str]:
    """Op types onnx2tf has no converter module for (``onnx2tf/ops/<Op>.py``).

    Looked up as files: finding ``onnx2tf.ops.X`` as a module would import onnx2tf, which imports
    TensorFlow in this process, whose C++ start-up logs to the terminal before any setting applies.
    """
    import importlib.util

    spec = importlib.util.find_spec("onnx2tf")  # a top-level lookup imports nothing
    folders = [Path(p) / "ops" for p in (spec.submodule_search_locations or [])] if spec else []
    if not folders:
        raise ModelError("Converting ONNX models needs onnx2tf, which is not installed: pip install onnx2tf "
                         "(with --no-deps: it pins older TensorFlow and numpy; see the README).")
    return [op for op in info.op_types if not any((f / f"{op}.py").is_file() for f in folders)]


def resolve_shape(info: OnnxInfo, path: Path, input_shape: Optional[Sequence[int]]) -> Optional[list[int]]:
    """The input shape to fix in the converted model, or None to keep the file's own.

    A dynamic batch dimension is fine (the converted model keeps it dynamic); any other dynamic
    dimension needs ``input_shape`` (the CLI's ``--input-shape``), in the ONNX file's own layout.
    """
    if len(info.inputs) > 1:
        return _several_inputs_shape(info, path, input_shape)
    shown = "(" + ", ".join(str(d) if d else "?" for d in info.input_shape) + ")"
    if input_shape is None:
        dynamic = [i for i, d in enumerate(info.input_shape) if not isinstance(d, int) or d <= 0]
        if any(i != 0 for i in dynamic) or not info.input_shape:
            raise ModelError(f"Model {path} has dynamic input dimensions: input {info.input_name!r} is {shown}. "
                             "Give the shape to convert with, in the ONNX layout, e.g. input_shape="
                             f"{','.join(str(d) if isinstance(d, int) and d > 0 else '1' for d in info.input_shape)}.",
                             param="input_shape")
        return None
    shape = [int(d) for d in input_shape]
    if len(shape) != len(info.input_shape) or any(d < 1 for d in shape):
        raise ModelError(f"input_shape={','.join(map(str, shape))} does not fit model {path}: input "
                         f"{info.input_name!r} is {shown} ({len(info.input_shape)} dimensions, each at least 1).",
                         param="input_shape")
    fixed = [(i, d) for i, d in enumerate(info.input_shape) if isinstance(d, int) and d > 0 and d != shape[i]]
    if fixed:
        raise ModelError(f"input_shape={','.join(map(str, shape))} contradicts model {path}: input "
                         f"{info.input_name!r} is {shown}; only its dynamic dimensions can be set.",
                         param="input_shape")
    return shape


def _several_inputs_shape(info: OnnxInfo, path: Path, input_shape: Optional[Sequence[int]]) -> None:
    """A model with several inputs converts with the shapes it declares (a dynamic batch is fine)."""
    names = ", ".join(i.name for i in info.inputs)
    if input_shape is not None:
        raise ModelError(f"input_shape fixes the one input of a single-input ONNX model; model {path} has "
                         f"{len(info.inputs)} inputs ({names}). Export it with static shapes (all but the batch).",
                         param="input_shape")
    for inp in info.inputs:
        if any(not isinstance(d, int) or d <= 0 for d in inp.shape[1:]) or not inp.shape:
            shown = "(" + ", ".join(str(d) if d else "?" for d in inp.shape) + ")"
            raise ModelError(f"Model {path} has dynamic input dimensions: input {inp.name!r} is {shown}. With "
                             f"several inputs ({names}) only the batch may be dynamic: export it with static shapes.")
    return None


@dataclasses.dataclass
class OnnxSource(SourceModel):
    """An ``.onnx`` converted by onnx2tf (``framework`` is ``onnx``); ``onnx_input_shape`` is the
    ``--input-shape`` it was converted with (ONNX layout), recorded in sidecars so it can be redone."""

    onnx_input_shape: Optional[tuple[int, ...]] = None


def load_onnx(path: str | Path, input_shape: Optional[Sequence[int]] = None,
              samples: Optional[np.ndarray | dict[str, np.ndarray]] = None) -> OnnxSource:
    """Convert ``path`` with onnx2tf and return a :class:`~tflite_deploy.sources.keras.SourceModel` for it.

    ``samples`` (channels-last, as the converted model takes them; arrays by input name for a model
    with several inputs) feed onnx2tf's own checks; without them it gets fixed pseudo-random data,
    never a download.
    """
    p = Path(path)
    info = read_onnx(p)
    missing = unsupported_ops(info)
    if missing:
        raise ModelError(f"Model {p} uses ONNX op(s) {', '.join(missing)}, which onnx2tf cannot convert. "
                         "Replace them in the model (or export it without them) and convert again.")
    shape = resolve_shape(info, p, input_shape)
    tmp = tempfile.TemporaryDirectory(prefix="tflite-deploy-onnx-")
    work = Path(tmp.name)
    saved_model = _run_onnx2tf(p, info, shape, samples, work)
    source = load_model(saved_model)
    fields = {f.name: getattr(source, f.name) for f in dataclasses.fields(SourceModel)}
    return OnnxSource(**{**fields, "path": p, "name": p.stem, "sha256": sha256_file(p), "framework": "onnx",
                         "_tmp": tmp}, onnx_input_shape=None if shape is None else tuple(shape))


def _run_onnx2tf(path: Path, info: OnnxInfo, shape: Optional[list[int]], samples: Any, work: Path) -> Path:
    model_copy = work / "model.onnx"  # onnx2tf may rewrite the file it is given
    if shape is None:
        shutil.copyfile(path, model_copy)
    else:
        _fix_input_shape(path, info.input_name, shape, model_copy)
    declared = info.inputs or (OnnxInput(info.input_name, info.input_shape, info.input_dtype),)
    custom = []
    for k, inp in enumerate(declared):
        mine = samples.get(inp.name) if isinstance(samples, dict) else samples if k == 0 else None
        data = _sample_data(inp, shape if k == 0 else None, mine)
        np.save(work / f"samples_{k}.npy", data)
        custom.append([inp.name, str(work / f"samples_{k}.npy")])
        if k == 0:
            np.save(work / _ONNX2TF_SAMPLE_FILE, data.astype(np.float32))  # found locally: no download
    out = work / "saved_model"
    kwargs: dict[str, Any] = {
        "input_onnx_file_path": str(model_copy), "output_folder_path": str(out),
        "output_signaturedefs": True, "not_use_onnxsim": True, "verbosity": "error",
        "custom_input_op_name_np_data_path": custom,
    }
    code = "import json, sys, onnx2tf; onnx2tf.convert(**json.loads(sys.argv[1]))"
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
           # an unreachable proxy: whatever onnx2tf tries to fetch fails at once instead of downloading
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
           "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "NO_PROXY": "", "no_proxy": ""}
    try:
        run = subprocess.run([sys.executable, "-c", code, json.dumps(kwargs)], cwd=work, env=env,
                             capture_output=True, text=True, timeout=_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ModelError(f"onnx2tf did not finish converting model {path} within {_TIMEOUT_S} s.") from None
    log = _strip_ansi(run.stdout + "\n" + run.stderr).strip()
    if run.returncode != 0 or not (out / "saved_model.pb").is_file():
        raise ModelError(f"onnx2tf could not convert model {path} (opset {info.opset}, exit code "
                         f"{run.returncode}): {_explain(log)}")
    return out


def _fix_input_shape(path: Path, input_name: str, shape: list[int], out: Path) -> None:
    """Write a copy of the model with its input dimensions fixed (onnx2tf's own
    ``overwrite_input_shape`` only reaches onnxsim, which tflite-deploy does not run)."""
    import onnx

    model = onnx.load(str(path))
    inp = next(i for i in model.graph.input if i.name == input_name)
    for dim, value in zip(inp.type.tensor_type.shape.dim, shape):
        dim.Clear()
        dim.dim_value = value
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception as e:
        raise ModelError(f"Model {path} does not take input shape {tuple(shape)}: {_first_line(e)}") from None
    onnx.save(model, str(out))


def _sample_data(inp: OnnxInput, shape: Optional[list[int]], samples: Optional[np.ndarray]) -> np.ndarray:
    """Samples in the converted model's (channels-last) layout for onnx2tf's checks."""
    dims = list(shape) if shape is not None else [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
    dims[0] = 1
    if len(dims) >= 3:  # onnx2tf turns NC... into N...C
        dims = [dims[0], *dims[2:], dims[1]]
    if samples is not None and tuple(samples.shape[1:]) == tuple(dims[1:]):
        return np.asarray(samples[:20], dtype=inp.dtype)
    return np.random.default_rng(0).random(size=[20, *dims[1:]]).astype(inp.dtype)


def _explain(log: str) -> str:
    """The lines of onnx2tf's log that say what went wrong (it logs at length)."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    hits = [ln for ln in lines if "ERROR" in ln or "Error" in ln or "error:" in ln]
    picked = (hits[-3:] if hits else lines[-3:]) or ["(no output)"]
    return " | ".join(picked)[:900]


def _strip_ansi(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else type(e).__name__
