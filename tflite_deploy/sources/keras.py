"""Load a source model (.keras, .h5, SavedModel folder) and hand out TFLite converters for it."""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from tflite_deploy.datasets.inputs import ModelInput
from tflite_deploy.errors import ModelError
from tflite_deploy.hashing import sha256_remembered
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
    inputs: tuple[ModelInput, ...] = ()  # every input by name (the signature's names)
    recurrent: bool = False  # has LSTM/GRU/RNN layers (their loops need a static batch to convert)
    while_loops: tuple[str, ...] = ()  # recurrent layers that convert to a WHILE loop (GRU, SimpleRNN: no fused op)

    @property
    def dynamic_batch(self) -> bool:
        return any(not i.shape or i.shape[0] is None or i.shape[0] < 0 for i in self.inputs)

    def converter(self, fixed_batch: Optional[int] = None) -> Any:
        """A fresh ``tf.lite.TFLiteConverter`` for this model (one per recipe: they hold state).

        ``fixed_batch``: trace the model with that batch size instead of a dynamic one (recurrent
        layers need it: their TensorList ops only lower to TFLite builtins with static shapes).
        """
        tf = tensorflow()
        if fixed_batch is not None:
            return _fixed_batch_converter(self, fixed_batch)
        if self.keras_model is not None:
            return tf.lite.TFLiteConverter.from_keras_model(self.keras_model)
        return tf.lite.TFLiteConverter.from_saved_model(str(self.saved_model_dir))


def _fixed_batch_converter(source: SourceModel, batch: int) -> Any:
    """A converter over the model traced with a static batch, inputs and outputs keeping their names."""
    tf = tensorflow()
    specs = {i.name: tf.TensorSpec([batch, *[None if d is None or d < 0 else d for d in i.shape[1:]]],
                                   tf.as_dtype(i.dtype), name=i.name) for i in source.inputs}
    if source.keras_model is not None:
        model = source.keras_model
        names = list(model.output_names)

        def run(**kw: Any) -> Any:
            out = model([kw[i.name] for i in source.inputs] if len(source.inputs) > 1 else kw[source.inputs[0].name])
            out = out if isinstance(out, (list, tuple)) else [out]
            return dict(zip(names, out))

        fn = tf.function(run).get_concrete_function(**specs)
        return tf.lite.TFLiteConverter.from_concrete_functions([fn], model)
    loaded = tf.saved_model.load(str(source.saved_model_dir))
    sig = loaded.signatures["serving_default"]
    fn = tf.function(lambda **kw: sig(**kw)).get_concrete_function(**specs)
    return tf.lite.TFLiteConverter.from_concrete_functions([fn], loaded)


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
        model = _tf_keras_load(keras, p, safe)
        framework = "tf_keras"
    except Exception as legacy_error:  # maybe saved by Keras 3, which tf_keras cannot read
        if _is_lambda_refusal(legacy_error):
            raise ModelError(_lambda_message(p), param="unsafe_deserialization") from None
        model = _load_keras3(p, legacy_error, safe)
        framework = "keras3"
    source = _from_keras(p, model, framework)
    source.unsafe_deserialization = unsafe_deserialization
    return source


def _tf_keras_load(keras: Any, p: Path, safe: dict[str, bool]) -> Any:
    """``keras.models.load_model(p, compile=False)``, faster for a tf_keras ``.keras`` zip: tf_keras reads
    ``model.weights.h5`` through :mod:`zipfile`, where every backward seek of HDF5 re-reads the member
    from its start. Measured on ResNet50: 13 s for its 103 MB file, 105 s for the 308 MB file ``fit``
    leaves (Adam's slots, unused with ``compile=False``). Here the member is copied out once, in order,
    and read from disk: 1.8 s for either. The steps are tf_keras 2.x's own ``saving_lib.load_model``
    (same config, object sharing and state loading); anything else (an ``.h5``, a Keras 3 file, assets)
    takes the usual call."""
    weights_name = "model.weights.h5"
    try:
        from tf_keras.src.saving import saving_lib
        from tf_keras.src.saving.serialization_lib import ObjectSharingScope

        with zipfile.ZipFile(p) as zf:
            names = zf.namelist()
            meta = json.loads(zf.read("metadata.json")) if "metadata.json" in names else {}
            fast = (p.suffix.lower() == ".keras" and str(meta.get("keras_version", "")).startswith("2.")
                    and sorted(names) == ["config.json", "metadata.json", weights_name])
    except (ImportError, zipfile.BadZipFile, ValueError, KeyError):
        fast = False
    if not fast:
        return keras.models.load_model(p, compile=False, **safe)
    with zipfile.ZipFile(p) as zf, tempfile.TemporaryDirectory(prefix="tflite-deploy-keras-") as tmp:
        config = json.loads(zf.read("config.json"))
        config["compile_config"] = None
        weights = Path(tmp) / weights_name
        with zf.open(weights_name) as src, weights.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 24)
        was = getattr(saving_lib._SAVING_V3_ENABLED, "value", False)
        saving_lib._SAVING_V3_ENABLED.value = True
        try:
            with ObjectSharingScope():
                model = saving_lib.deserialize_keras_object(config, None, safe_mode=safe["safe_mode"])
            store = saving_lib.H5IOStore(str(weights), mode="r")
            try:
                saving_lib._load_state(model, weights_store=store, assets_store=None, inner_path="",
                                       visited_trackables=set())
            finally:
                store.close()
        finally:
            saving_lib._SAVING_V3_ENABLED.value = was
    return model


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
    inputs = tuple(_keras_input(t, i) for i, t in enumerate(model.inputs))
    sm = SourceModel(p, p.stem, sha256 or sha256_remembered(p), framework, inputs[0].shape, inputs[0].dtype,
                     inputs=inputs, recurrent=_has_recurrent_layer(model), while_loops=_while_loop_layers(model))
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


_RECURRENT = ("LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")


def _has_recurrent_layer(model: Any) -> bool:
    seen, stack = set(), list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if type(layer).__name__ in _RECURRENT:
            return True
        stack += list(getattr(layer, "layers", []) or [])
    return False


#: Recurrent layers TFLite has no fused op for: they convert to a WHILE loop of builtins unless unrolled.
_LOOPED = ("GRU", "SimpleRNN", "RNN")


def _while_loop_layers(model: Any) -> tuple[str, ...]:
    """Names of the layers that become WHILE loops (``gru (GRU)``); LSTM becomes a fused op, unrolled layers none."""
    found, seen, stack = [], set(), list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if type(layer).__name__ in _LOOPED and not getattr(layer, "unroll", False):
            found.append(f"{layer.name} ({type(layer).__name__})")
        stack += list(getattr(layer, "layers", []) or [])
        stack += [w for w in (getattr(layer, "forward_layer", None), getattr(layer, "backward_layer", None)) if w]
    return tuple(sorted(found))


def _keras_input(t: Any, i: int) -> ModelInput:
    """A Keras input tensor as the signature names it (the Input layer's name)."""
    name = str(getattr(t, "name", "") or f"input_{i}").split(":")[0]
    keras_history = getattr(t, "_keras_history", None)
    if keras_history is not None and getattr(keras_history[0], "name", None):
        name = keras_history[0].name
    shape = tuple(None if d is None else int(d) for d in t.shape)
    dtype = getattr(t.dtype, "name", str(t.dtype))
    return ModelInput(name, shape, dtype)


def _load_keras3(p: Path, legacy_error: Exception, safe: dict[str, bool]) -> Any:
    try:
        import keras  # Keras 3, installed beside TensorFlow

        return keras.saving.load_model(p, compile=False, **safe)
    except Exception as e:
        if _is_lambda_refusal(e):
            raise ModelError(_lambda_message(p), param="unsafe_deserialization") from None
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
    inputs = tuple(ModelInput(k, tuple(None if d is None else int(d) for d in spec.shape), spec.dtype.name)
                   for k, spec in sorted(sig.structured_input_signature[1].items()))
    if not inputs:
        raise ModelError(f"SavedModel {p}: its 'serving_default' signature takes no inputs.")
    return SourceModel(p, name, sha256_remembered(p), "saved_model", inputs[0].shape, inputs[0].dtype,
                       saved_model_dir=p, inputs=inputs)


def _first_line(e: Exception) -> str:
    """The first line of an error, whole (a cut-off message hides what to do)."""
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
