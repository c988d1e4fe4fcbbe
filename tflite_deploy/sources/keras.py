"""Load a source model (.keras, .h5, SavedModel folder) and hand out TFLite converters for it."""

from __future__ import annotations

import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from tflite_deploy.errors import ModelError
from tflite_deploy.hashing import sha256_file
from tflite_deploy.sources.tf_loader import tensorflow, tf_keras

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


@dataclass
class SourceModel:
    """A loaded source model. ``framework`` is ``tf_keras``, ``keras3`` or ``saved_model``."""

    path: Path
    name: str
    sha256: str
    framework: str
    input_shape: tuple[Optional[int], ...]
    input_dtype: str
    keras_model: Any = None  # a tf_keras model when framework == "tf_keras"
    saved_model_dir: Optional[Path] = None
    _tmp: Any = field(default=None, repr=False)  # keeps an exported SavedModel alive
    unsafe_deserialization: bool = False  # loaded with Lambda layers allowed (a worker loads it the same way)

    def converter(self) -> Any:
        """A fresh ``tf.lite.TFLiteConverter`` for this model (one per recipe: they hold state)."""
        tf = tensorflow()
        if self.keras_model is not None:
            return tf.lite.TFLiteConverter.from_keras_model(self.keras_model)
        return tf.lite.TFLiteConverter.from_saved_model(str(self.saved_model_dir))


#: Why a Lambda layer is refused unless asked for, said wherever the refusal is.
UNSAFE_WHY = ("A Lambda layer stores Python code in the file, and loading it runs that code with your rights, "
              "so it is off by default: a model file from elsewhere could do anything on this machine.")


def load_model(path: str | Path, *, unsafe_deserialization: bool = False) -> SourceModel:
    """Load a Keras (.keras/.h5) file or a SavedModel folder; errors name the file and the cause.

    ``unsafe_deserialization``: load Lambda layers (Keras' ``safe_mode=False``); see :data:`UNSAFE_WHY`.
    """
    p = Path(path)
    if not p.exists():
        raise ModelError(f"Model {p} does not exist.")
    if p.is_dir():
        if not (p / "saved_model.pb").is_file():
            raise ModelError(f"Model folder {p} is not a SavedModel (no saved_model.pb inside). "
                             "Give a SavedModel folder or a .keras/.h5 file.")
        return _load_saved_model(p, p.name)
    if p.suffix.lower() not in KERAS_SUFFIXES:
        raise ModelError(f"Model {p}: unsupported file type {p.suffix or '(none)'!r}. Give a .keras or "
                         ".h5 file or a SavedModel folder (a .tflite is already converted: use "
                         "`tflite-deploy inspect` or `bench`).")
    if p.suffix.lower() == ".keras" and not zipfile.is_zipfile(p):
        raise ModelError(f"Model {p} is not a Keras file: a .keras file is a zip archive, this one is not "
                         "(truncated, or another kind of file renamed?).")
    keras = tf_keras()
    safe = {"safe_mode": not unsafe_deserialization}
    try:
        model = keras.models.load_model(p, compile=False, **safe)
        framework = "tf_keras"
    except Exception as legacy_error:  # maybe saved by Keras 3, which tf_keras cannot read
        if _is_lambda_refusal(legacy_error):
            raise ModelError(_lambda_message(p)) from None
        model = _load_keras3(p, legacy_error, safe)
        framework = "keras3"
    source = _from_keras(p, model, framework)
    source.unsafe_deserialization = unsafe_deserialization
    return source


def _is_lambda_refusal(e: Exception) -> bool:
    text = str(e)
    return "Lambda" in text and "safe_mode" in text


def _lambda_message(p: Path) -> str:
    return (f"Model {p} contains a Lambda layer, which is not loaded by default. {UNSAFE_WHY} If you trust "
            "where the file comes from, pass unsafe_deserialization=True; better, replace the Lambda with a registered custom layer.")


def from_keras_model(model: Any, name: str = "model") -> SourceModel:
    """Wrap an in-memory tf_keras model (the Python API's entry point, used by ``demo``)."""
    return _from_keras(Path(name), model, "tf_keras", sha256="in-memory")


def _from_keras(p: Path, model: Any, framework: str, sha256: Optional[str] = None) -> SourceModel:
    if not getattr(model, "inputs", None):
        raise ModelError(f"Model {p} has no defined inputs (a subclassed model that was never built?). "
                         "Build it with a fixed input shape, or save it as a SavedModel with a signature.")
    if len(model.inputs) != 1:
        raise ModelError(f"Model {p} has {len(model.inputs)} inputs; tflite-deploy handles single-input "
                         "models for now.")
    inp = model.inputs[0]
    shape = tuple(None if d is None else int(d) for d in inp.shape)
    dtype = getattr(inp.dtype, "name", str(inp.dtype))
    sm = SourceModel(p, p.stem, sha256 or sha256_file(p), framework, shape, dtype)
    if framework == "tf_keras":
        sm.keras_model = model
    else:
        # Keras 3 models reach the converter through a SavedModel export (model.export).
        sm._tmp = tempfile.TemporaryDirectory(prefix="tflite-deploy-k3-")
        export_dir = Path(sm._tmp.name) / "saved_model"
        try:
            model.export(str(export_dir), verbose=False)
        except Exception as e:
            raise ModelError(
                f"Model {p} is a Keras 3 model that could not be exported for conversion: {e}. Re-save it "
                "with tf_keras (`import tf_keras as keras`) or export a SavedModel (`model.export(dir)`) "
                "and convert that folder.") from None
        sm.saved_model_dir = export_dir
    return sm


def _load_keras3(p: Path, legacy_error: Exception, safe: dict[str, bool]) -> Any:
    try:
        import keras  # Keras 3, installed beside TensorFlow

        return keras.saving.load_model(p, compile=False, **safe)
    except Exception as e:
        if _is_lambda_refusal(e):
            raise ModelError(_lambda_message(p)) from None
        raise ModelError(f"Model {p} could not be loaded by tf_keras ({_first_line(legacy_error)}) nor by "
                         f"Keras 3 ({_first_line(e)}). Is it a complete Keras model file?") from None


def _load_saved_model(p: Path, name: str) -> SourceModel:
    tf = tensorflow()
    try:
        loaded = tf.saved_model.load(str(p))
        sig = loaded.signatures["serving_default"]
    except KeyError:
        raise ModelError(f"SavedModel {p} has no 'serving_default' signature; export one "
                         "(tf.saved_model.save(model, dir, signatures=...)).") from None
    except Exception as e:
        raise ModelError(f"SavedModel {p} could not be loaded: {_first_line(e)}") from None
    specs = list(sig.structured_input_signature[1].values())
    if len(specs) != 1:
        raise ModelError(f"SavedModel {p} takes {len(specs)} inputs; tflite-deploy handles single-input "
                         "models for now.")
    spec = specs[0]
    shape = tuple(None if d is None else int(d) for d in spec.shape)
    return SourceModel(p, name, sha256_file(p), "saved_model", shape, spec.dtype.name, saved_model_dir=p)


def _first_line(e: Exception) -> str:
    """The first line of an error, whole (a cut-off message hides what to do)."""
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
