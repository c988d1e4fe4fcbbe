"""A float ``.tflite`` as a source model: checked and described for the AI Edge Quantizer (no TensorFlow).

A model from a model zoo, MediaPipe or another converter arrives as a float ``.tflite``; it must
have a signature (AEQ calibrates and validates through signatures). A model with several inputs is
calibrated by the signature's input names (a ``.npz`` with one array per input).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from tflite_deploy.datasets.inputs import ModelInput
from tflite_deploy.errors import ModelError
from tflite_deploy.hashing import sha256_file
from tflite_deploy.tflite.native_output import captured_native_stderr


@dataclass
class TfliteSource:
    """A float ``.tflite`` used as a source model (``framework`` is ``tflite``)."""

    path: Path
    name: str
    sha256: str
    input_shape: tuple[Optional[int], ...]
    input_dtype: str
    signature: str
    input_name: str  # the signature's input argument name (AEQ calibrates through signatures)
    op_outputs: tuple[str, ...]  # op output tensor names: what AEQ's rules match
    op_types: tuple[str, ...]
    framework: str = "tflite"
    #: every input by signature name when there are several or the one is not float (calibration feeds them
    #: by name, dtypes kept); empty for one float input
    inputs: tuple[ModelInput, ...] = ()

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()


def load_tflite_source(path: str | Path) -> TfliteSource:
    """Check that ``path`` is a float ``.tflite`` with a signature, and describe it."""
    from tflite_deploy.tflite.reader import inspect_model

    p = Path(path)
    if not p.is_file():
        raise ModelError(f"Model {p} does not exist.")
    report = inspect_model(p)  # a truncated or foreign file is a ModelError here
    if report.kind != "float32":
        raise ModelError(
            f"Model {p} is already quantized ({report.quantization.label or report.kind}); a .tflite "
            "source must be a float32 model so each recipe starts from full precision. Give the float "
            "model it was made from (or the Keras/ONNX original).")
    interp = interpreter(p.read_bytes(), p)
    sigs = interp.get_signature_list()
    if not sigs:
        raise ModelError(f"Model {p} has no signature (SignatureDef); the AI Edge Quantizer calibrates and "
                         "validates through signatures. Re-export it with one (the TFLite converter adds "
                         "`serving_default` by default).")
    signature = "serving_default" if "serving_default" in sigs else next(iter(sigs))
    inputs = sigs[signature]["inputs"]
    tensors = interp.get_tensor_details()
    outputs = tuple(tensors[op["outputs"][0]]["name"] for op in interp._get_ops_details() if len(op["outputs"]))
    types = tuple(sorted({op["op_name"] for op in interp._get_ops_details()}))
    inp = report.inputs[0]
    shape = tuple(None if d < 0 else int(d) for d in inp.shape)
    # by name when there are several, or when the one input is not float (token ids: dtype kept in calibration)
    named = _signature_inputs(interp, signature) if len(inputs) > 1 or not inp.dtype.startswith("float") else ()
    first = named[0] if named else None
    return TfliteSource(p, p.stem, sha256_file(p), first.shape if first else shape, first.dtype if first else inp.dtype,
                        signature, first.name if first else inputs[0], outputs, types, inputs=named)


def _signature_inputs(interp: Any, signature: str) -> tuple[ModelInput, ...]:
    """The signature's inputs by name (sorted, as the Keras sources list them), with shape and dtype."""
    import numpy as np

    details = interp.get_signature_runner(signature).get_input_details()
    return tuple(ModelInput(name, tuple(None if int(v) < 0 else int(v) for v in d.get("shape_signature", d["shape"])),
                            np.dtype(d["dtype"]).name) for name, d in sorted(details.items()))


def interpreter(data: bytes, path: Path) -> Any:
    """A LiteRT interpreter over ``data``; a file it cannot load is a ModelError naming ``path``."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        with captured_native_stderr():
            return Interpreter(model_content=data)
    except (ValueError, RuntimeError) as e:
        raise ModelError(f"Model {path} could not be loaded by the LiteRT interpreter: {e}") from None
