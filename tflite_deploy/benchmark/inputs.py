"""Inputs a latency run feeds: valid values for token ids and masks, or the user's own data.

benchmark_model fills int32 inputs with random values in 0..99 by default, and a model whose ids
index an embedding of fewer rows fails ("gather index out of bounds"). So for every whole-number
input we draw values in the input's valid range (the embedding's rows, read from the GATHER it
feeds; 0/1 for masks; :meth:`~tflite_deploy.tflite.runtime.TfliteModel.value_ranges`), or take
the first samples of ``--data``, and hand them to benchmark_model as value files (raw bytes in the
tensor's layout) with ``--input_layer``, ``--input_layer_shape`` and ``--input_layer_value_files``
(flags of tensorflow/lite/tools/benchmark/benchmark_tflite_model.cc; inputs are matched by position,
and a ``:`` in a tensor name or path is doubled, ``::``, as SplitInputLayerNameAndValueFile in
benchmark_tflite_model.cc reads it: one ``:`` is the delimiter, ``::`` a literal colon). Float-only
models get no flags: the tool's own random floats serve them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np


@dataclass(frozen=True)
class InputValues:
    """One model's inputs, in the interpreter's order: tensor names, shapes and the raw bytes of each."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    data: tuple[bytes, ...]
    source: str  # "valid ranges" or the dataset's name

    def flags(self, remote_files: list[str]) -> list[str]:
        files = ",".join(f"{n.replace(':', '::')}:{f.replace(':', '::')}" for n, f in zip(self.names, remote_files))
        return [f"--input_layer={','.join(self.names)}",
                f"--input_layer_shape={':'.join(','.join(str(d) for d in s) for s in self.shapes)}",
                f"--input_layer_value_files={files}"]


def needs_values(model: Any) -> bool:
    """Whether a model has whole-number inputs (token ids, masks) that random data would break."""
    return bool(model.value_ranges())


def refuse_on_litert(path: str | Path, data: Any = None) -> None:
    """LiteRT's benchmark_model (litert/tools/benchmark_litert_model.h) has no input flags: its
    PrepareInputData fills every input with random values over the type's whole range. Token ids
    would then index outside their embedding, so a model with whole-number inputs (or a run asked to
    use ``--data``) is refused on that runtime, naming the input and the way out."""
    from tflite_deploy.errors import UserError
    from tflite_deploy.tflite.runtime import TfliteModel

    fix = ("use runtime=tflite (TFLite's benchmark_model, which bench gives valid values through "
           "--input_layer_value_files), or bench it on the host")
    if data is not None:
        raise UserError(f"LiteRT's benchmark_model has no flag for input values, so it cannot take {data!r}: {fix}.",
                        param="runtime")
    m = TfliteModel(path)
    ranges = m.value_ranges()
    if not ranges:
        return
    details = {m.name_of(d): d for d in m.inputs}
    said = "; ".join(f"input {name!r} ({np.dtype(details[name]['dtype']).name}, shape "
                     f"{list(int(x) for x in details[name]['shape'])}) takes {lo}..{hi}"
                     for name, (lo, hi) in ranges.items())
    raise UserError(f"Model {Path(path).name}: {said}, but LiteRT's benchmark_model has no flag for input values "
                    f"and would feed random values of the whole type range (ids outside the vocabulary): {fix}.",
                    param="runtime")


def input_values(path: str | Path, data: Any = None) -> Optional[InputValues]:
    """Values for every input of ``path`` (None for a float-only model and no data)."""
    from tflite_deploy.tflite.runtime import TfliteModel

    m = TfliteModel(path)
    if data is None and not needs_values(m):
        return None
    if data is not None:
        m.set_inputs(_batch(data, m))
        source = getattr(data, "name", str(data))
    else:
        m.fill_random_input()
        source = "valid ranges"
    tensors = [m.interpreter.get_tensor(d["index"]) for d in m.inputs]
    return InputValues(tuple(str(d["name"]) for d in m.inputs), tuple(tuple(int(x) for x in t.shape) for t in tensors),
                       tuple(np.ascontiguousarray(t).tobytes() for t in tensors), source)


def _batch(data: Any, m: Any) -> Any:
    from tflite_deploy.datasets import open_dataset

    ds = open_dataset(data) if isinstance(data, str) else data
    return ds.take(m.fixed_batch or 1)
