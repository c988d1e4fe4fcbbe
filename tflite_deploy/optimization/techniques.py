"""The optimization techniques (TF-MOT), registered by name, and the recipe names that use them.

A technique is a sequence of *stages*; each stage wraps a tf_keras model (``prune_low_magnitude``,
``cluster_weights``, ``quantize_apply``), is fine-tuned by :mod:`tflite_deploy.optimization.run`, and is
stripped back to a plain model (``strip_pruning``, ``strip_clustering``; a QAT model stays wrapped:
the converter reads its fake-quant ranges)::

    qat     QAT                                      quantize_apply(Default8BitQuantizeScheme)
    prune   prune                                    prune_low_magnitude + strip_pruning
    cluster cluster                                  cluster_weights + strip_clustering
    pqat    prune -> QAT keeping the zeros           Default8BitPrunePreserveQuantizeScheme
    cqat    cluster -> QAT keeping the centroids     Default8BitClusterPreserveQuantizeScheme
    pcqat   prune -> cluster keeping the zeros ->    cluster_weights(preserve_sparsity=True),
            QAT keeping both                         ClusterPreserveQuantizeScheme(preserve_sparsity=True)

``qat`` started from the float weights with a short schedule is also "fine-tune after PTQ": the
int8 file it gives replaces the post-training-quantized one.

TF-MOT works on Keras 2 models built with ``tf_keras`` only (Sequential or Functional). Layers it
cannot wrap are found up front (:func:`unsupported_layers`) so that the user sees them by name and
can choose to leave them un-annotated (``skip``). What counts as "cannot wrap" follows TF-MOT's own
rules, not only its per-layer registries:

- pruning and clustering act on weights, so a layer without weights (``Rescaling``, ``TFOpLambda``,
  ``Reshape``, activations, pooling, ...) is simply left alone; only a layer that has weights and is
  in no registry is named;
- QAT runs TF-MOT's layout transforms first, as ``quantize_apply`` does: a ``BatchNormalization``
  after a Conv2D/DepthwiseConv2D/Dense is folded into it there (and so by the converter), so it is
  supported although no registry lists it. Weightless merge layers the 8-bit registry leaves out
  (``Multiply`` of a squeeze-excite block, ``Subtract``, ...) get the output-only config TF-MOT
  gives ``Add``: TFLite computes them in int8 with an output scale, as post-training int8 does.

The settings of a technique are one record, :class:`tflite_deploy.recipes.OptimizeStep` (a recipe's
step and ``optimize()``'s argument alike); :data:`TECHNIQUES` holds the stages of every technique it
names. Everything here that needs TensorFlow imports it inside the function (through ``tf_loader``),
so importing this module stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from tflite_deploy.errors import OptimizeError
from tflite_deploy.recipes import CENTROID_INITS, OPTIMIZE_TECHNIQUES, OptimizeStep

__all__ = ["OptimizeError"]  # re-exported: it is defined in errors.py, beside the step that raises it


@dataclass
class Context:
    """What a stage's wrap needs besides the model: the step's settings, layers to leave alone, the step count."""

    options: OptimizeStep
    skip: frozenset[str] = frozenset()
    steps_per_epoch: int = 1
    wrapped: list[str] = field(default_factory=list)  # filled by wrap: layers the stage really changes


# -------------------------------------------------------------------------------------- stages
@dataclass(frozen=True)
class Stage:
    """One wrap -> fine-tune -> strip step. ``kind`` names its checkpoint folder."""

    kind: str  # prune | cluster | qat
    wrap: Callable[[Any, Context], Any]
    strip: Callable[[Any], Any]
    unsupported: Callable[[Any], dict[str, str]]  # model -> {layer it cannot handle: why}
    callbacks: Callable[[Context], list] = lambda ctx: []
    description: str = ""


def _tfmot() -> Any:
    from tflite_deploy.sources.tf_loader import tensorflow

    tensorflow()  # sets TF_USE_LEGACY_KERAS before TF-MOT imports TensorFlow
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # tfmot uses distutils.LooseVersion
        import tensorflow_model_optimization as tfmot
    return tfmot


def _is_input(layer: Any) -> bool:
    from tflite_deploy.sources.tf_loader import tf_keras

    return isinstance(layer, tf_keras().layers.InputLayer)


def _nested(layer: Any) -> Optional[str]:
    from tflite_deploy.sources.tf_loader import tf_keras

    if isinstance(layer, tf_keras().Model):
        return "a model nested inside the model (TF-MOT wraps layers, not inner models): flatten it"
    return None


def _per_layer(check: Callable[[Any], Optional[str]]) -> Callable[[Any], dict[str, str]]:
    """A model-level check from a per-layer one: {layer name: reason} for the layers it refuses."""
    def unsupported(model: Any) -> dict[str, str]:
        return {layer.name: reason for layer in model.layers if (reason := check(layer)) is not None}

    return unsupported


def _has_weights(layer: Any) -> bool:
    return bool(layer.weights)


# --- pruning
def _prune_supports(layer: Any) -> Optional[str]:
    from tensorflow_model_optimization.python.core.sparsity.keras import prunable_layer, prune_registry

    _tfmot()
    if _is_input(layer):
        return None
    if (reason := _nested(layer)) is not None:
        return reason
    if not _has_weights(layer):  # nothing to prune: left as it is, no wrapper needed
        return None
    if (isinstance(layer, prunable_layer.PrunableLayer) or hasattr(layer, "get_prunable_weights")
            or prune_registry.PruneRegistry.supports(layer)):
        return None
    return "not in TF-MOT's pruning registry (make it a tfmot.sparsity.keras.PrunableLayer to prune it)"


def _prune_schedule(opts: OptimizeStep, steps_per_epoch: int) -> Any:
    """A schedule that reaches the target well before the end, on steps the wrapper really prunes at.

    TF-MOT updates masks only every ``frequency`` steps (100 by default), so a short fine-tune with
    the default frequency never reaches its target: the frequency is scaled to the run. Polynomial
    decay ramps 0 -> target over the first 70% of the steps; the rest recovers accuracy at the target.
    """
    tfmot = _tfmot()
    total = max(1, opts.epochs * steps_per_epoch)
    frequency = max(1, min(100, total // 10))
    if opts.schedule == "constant":
        return tfmot.sparsity.keras.ConstantSparsity(opts.sparsity, begin_step=0, frequency=frequency)
    end = max(frequency, (int(total * 0.7) // frequency) * frequency)
    return tfmot.sparsity.keras.PolynomialDecay(initial_sparsity=0.0, final_sparsity=opts.sparsity,
                                                begin_step=0, end_step=end, frequency=frequency)


def _prune_wrap(model: Any, ctx: Context) -> Any:
    tfmot = _tfmot()
    schedule = _prune_schedule(ctx.options, ctx.steps_per_epoch)

    def wrap(layer: Any) -> Any:
        if _is_input(layer) or layer.name in ctx.skip or not _has_weights(layer):
            return layer
        w = tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
        if w.layer.get_prunable_weights():
            ctx.wrapped.append(layer.name)
        return w

    return _clone(model, wrap)


def _prune_callbacks(ctx: Context) -> list:
    return [_tfmot().sparsity.keras.UpdatePruningStep()]


def _prune_strip(model: Any) -> Any:
    return _tfmot().sparsity.keras.strip_pruning(model)


# --- clustering
def _cluster_supports(layer: Any) -> Optional[str]:
    from tensorflow_model_optimization.python.core.clustering.keras import clusterable_layer, clustering_registry

    _tfmot()
    if _is_input(layer):
        return None
    if (reason := _nested(layer)) is not None:
        return reason
    if not _has_weights(layer):  # nothing to cluster: left as it is, no wrapper needed
        return None
    if isinstance(layer, clusterable_layer.ClusterableLayer) or clustering_registry.ClusteringRegistry.supports(layer):
        return None
    return "not in TF-MOT's clustering registry (make it a tfmot.clustering.keras.ClusterableLayer to cluster it)"


def _cluster_wrap_factory(preserve_sparsity: bool) -> Callable[[Any, Context], Any]:
    def wrap_model(model: Any, ctx: Context) -> Any:
        tfmot = _tfmot()
        init = getattr(tfmot.clustering.keras.CentroidInitialization, CENTROID_INITS[ctx.options.init])

        def wrap(layer: Any) -> Any:
            if _is_input(layer) or layer.name in ctx.skip or not _has_weights(layer):
                return layer
            kwargs = {"preserve_sparsity": True} if preserve_sparsity else {}
            w = tfmot.clustering.keras.cluster_weights(layer, number_of_clusters=ctx.options.clusters,
                                                       cluster_centroids_init=init, **kwargs)
            # cluster_weights leaves a Conv2D with too few weights alone (returns the layer itself)
            if w is not layer and hasattr(w, "layer") and w.layer.get_clusterable_weights():
                ctx.wrapped.append(layer.name)
            return w

        return _clone(model, wrap)

    return wrap_model


def _cluster_strip(model: Any) -> Any:
    return _tfmot().clustering.keras.strip_clustering(model)


# --- quantization-aware training
def _scheme(kind: str) -> Any:
    tfmot = _tfmot()
    if kind == "qat":
        return tfmot.quantization.keras.default_8bit.Default8BitQuantizeScheme()
    if kind == "pqat":
        return tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
    return tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=kind == "pcqat")


def _registry_supports(layer: Any, kind: str) -> bool:
    """In the 8-bit registry that every scheme builds on, and in the scheme's own registry."""
    tfmot = _tfmot()
    base = tfmot.quantization.keras.default_8bit.Default8BitQuantizeScheme().get_quantize_registry()
    return bool(base.supports(layer) and _scheme(kind).get_quantize_registry().supports(layer))


def _output_only(layer: Any) -> bool:
    """A weightless merge layer the 8-bit registry leaves out: it gets Add's output-only config."""
    from tflite_deploy.sources.tf_loader import tf_keras

    L = tf_keras().layers
    return isinstance(layer, (L.Multiply, L.Subtract, L.Maximum, L.Minimum, L.Average)) and not layer.weights


def _output_config() -> Any:
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_configs as configs)

    _tfmot()
    return configs.Default8BitOutputQuantizeConfig()


def _configured_by_transforms(model: Any, kind: str) -> set[str]:
    """Layers TF-MOT's layout transforms give a quantize config (BatchNorm after a conv, ...).

    The same step ``quantize_apply`` takes before it wraps: every layer annotated, then the
    scheme's transforms; a layer they configure is quantized (or folded) without a registry entry.
    """
    qmap: dict[str, dict] = {layer.name: {"quantize_config": None} for layer in model.layers
                             if not _is_input(layer)}
    qmap.update({layer.name: {} for layer in model.layers if _is_input(layer)})
    _, qmap = _scheme(kind).get_layout_transformer().apply(model, qmap)
    return {name for name, entry in qmap.items() if entry.get("quantize_config") is not None}


def _qat_unsupported_factory(kind: str) -> Callable[[Any], dict[str, str]]:
    def unsupported(model: Any) -> dict[str, str]:
        tfmot = _tfmot()
        out: dict[str, str] = {}
        candidates = []
        for layer in model.layers:
            if _is_input(layer) or isinstance(layer, tfmot.quantization.keras.QuantizeWrapperV2):
                continue
            if (reason := _nested(layer)) is not None:
                out[layer.name] = reason
            elif not (_registry_supports(layer, kind) or _output_only(layer)):
                candidates.append(layer.name)
        if candidates:  # only worth the model rebuild the transforms cost when some layer is in question
            handled = _configured_by_transforms(model, kind)
            for name in candidates:
                if name not in handled:
                    out[name] = ("not in TF-MOT's 8-bit quantization registry, and its transforms do not fold it "
                                 "(a BatchNormalization is folded only right after a Conv2D, DepthwiseConv2D "
                                 "or Dense that feeds nothing else); give it a "
                                 "tfmot.quantization.keras.QuantizeConfig to quantize it")
        return out

    return unsupported


def _qat_wrap_factory(kind: str) -> Callable[[Any, Context], Any]:
    def wrap_model(model: Any, ctx: Context) -> Any:
        tfmot = _tfmot()
        q = tfmot.quantization.keras

        def annotate(layer: Any) -> Any:
            if _is_input(layer) or layer.name in ctx.skip:
                return layer
            ctx.wrapped.append(layer.name)
            if _output_only(layer) and not _registry_supports(layer, kind):
                return q.quantize_annotate_layer(layer, quantize_config=_output_config())
            return q.quantize_annotate_layer(layer)

        annotated = _clone(model, annotate)
        if not ctx.wrapped:
            raise OptimizeError("No layer of the model can be quantized: nothing to train.")
        with q.quantize_scope():
            return q.quantize_apply(annotated, _scheme(kind))

    return wrap_model


def _qat_strip(model: Any) -> Any:
    return model  # the converter reads the fake-quant ranges from the QAT model itself


def _clone(model: Any, fn: Callable[[Any], Any]) -> Any:
    from tflite_deploy.sources.tf_loader import tf_keras

    return tf_keras().models.clone_model(model, clone_function=fn)


PRUNE = Stage("prune", _prune_wrap, _prune_strip, _per_layer(_prune_supports), _prune_callbacks,
              "prune_low_magnitude to the target sparsity, strip_pruning")
CLUSTER = Stage("cluster", _cluster_wrap_factory(False), _cluster_strip, _per_layer(_cluster_supports),
                description="cluster_weights to N centroids per kernel, strip_clustering")
CLUSTER_SPARSE = Stage("cluster", _cluster_wrap_factory(True), _cluster_strip, _per_layer(_cluster_supports),
                       description="cluster_weights(preserve_sparsity=True), strip_clustering")


def _qat(kind: str, description: str) -> Stage:
    return Stage("qat", _qat_wrap_factory(kind), _qat_strip, _qat_unsupported_factory(kind),
                 description=description)


@dataclass(frozen=True)
class Technique:
    name: str
    stages: tuple[Stage, ...]
    description: str
    prunes: bool = False
    clusters: bool = False

    @property
    def quantizes(self) -> bool:
        """QAT techniques give int8 files only (their model carries fake-quant ranges)."""
        return self.stages[-1].kind == "qat"


#: What each technique does before QAT, and the QAT it ends in; whether it ends in QAT at all is the
#: recipe vocabulary's word (``recipes.OPTIMIZE_TECHNIQUES``), said once there.
_BEFORE_QAT: dict[str, tuple[Stage, ...]] = {"qat": (), "prune": (PRUNE,), "cluster": (CLUSTER,),
                                             "pqat": (PRUNE,), "cqat": (CLUSTER,), "pcqat": (PRUNE, CLUSTER_SPARSE)}
_QAT_STAGES = {"qat": "quantize_apply (8-bit), fine-tune",
               "pqat": "QAT keeping the zeros (PrunePreserveQuantizeScheme)",
               "cqat": "QAT keeping the centroids (ClusterPreserveQuantizeScheme)",
               "pcqat": "QAT keeping zeros and centroids (preserve_sparsity=True)"}
_DESCRIPTIONS = {"qat": "quantization-aware training from the float weights (also: fine-tune after PTQ)",
                 "prune": "magnitude pruning to a target sparsity",
                 "cluster": "weight clustering to N unique values per kernel",
                 "pqat": "prune, then QAT that keeps the sparsity",
                 "cqat": "cluster, then QAT that keeps the clusters",
                 "pcqat": "prune, cluster keeping the zeros, then QAT keeping both"}


def _technique(name: str, quantizes: bool) -> Technique:
    before = _BEFORE_QAT[name]
    qat = (_qat(name, _QAT_STAGES[name]),) if quantizes else ()
    return Technique(name, before + qat, _DESCRIPTIONS[name], prunes=PRUNE in before,
                     clusters=any(s.kind == "cluster" for s in before))


#: The registry: technique name -> its stages, for every technique the recipe vocabulary names.
TECHNIQUES: dict[str, Technique] = {name: _technique(name, q) for name, q in OPTIMIZE_TECHNIQUES.items()}


def technique(name: str) -> Technique:
    if name not in TECHNIQUES:
        raise OptimizeError(f"Unknown technique {name!r}. Choose one of {', '.join(TECHNIQUES)}.")
    return TECHNIQUES[name]


def tag(step: OptimizeStep) -> str:
    """The short name of a technique with its main parameter: prune75, cluster16, cqat16, pcqat50c16."""
    pct = f"{step.sparsity * 100:g}"
    return {"qat": "qat", "prune": f"prune{pct}", "cluster": f"cluster{step.clusters}",
            "pqat": f"pqat{pct}", "cqat": f"cqat{step.clusters}",
            "pcqat": f"pcqat{pct}c{step.clusters}"}[step.technique]


# ---------------------------------------------------------------------------- model compatibility
@dataclass(frozen=True)
class UnsupportedLayer:
    name: str
    type: str
    reason: str


def check_keras_model(model: Any, where: str) -> None:
    """Refuse, with a message that says what to do, models TF-MOT cannot wrap at all."""
    from tflite_deploy.sources.tf_loader import tf_keras

    keras = tf_keras()
    if model is None:
        raise OptimizeError(f"{where}: no model (a TF-MOT call returned None?).")
    if not isinstance(model, keras.Model):
        module = type(model).__module__
        if module.startswith("keras") or hasattr(model, "_keras_api_names"):
            raise OptimizeError(keras3_message(where))
        raise OptimizeError(f"{where} is a {type(model).__name__}, not a Keras model.")
    if not isinstance(model, keras.Sequential) and not getattr(model, "_is_graph_network", False):
        raise OptimizeError(
            f"{where} is a subclassed Keras model ({type(model).__name__}): TF-MOT wraps only Sequential and "
            "Functional models, whose layers it can see. Rebuild it as a Functional model "
            "(inputs = keras.Input(...); outputs = ...; keras.Model(inputs, outputs)) with the same layers "
            "and copy the weights over (set_weights), then optimize that.")


def keras3_message(where: str) -> str:
    return (f"{where} is a Keras 3 model. TF-MOT (QAT, pruning, clustering) works only with Keras 2 models "
            "built with tf_keras (`import tf_keras as keras`, and TF_USE_LEGACY_KERAS=1 before TensorFlow "
            "loads); with Keras 3 it raises or silently returns None. Rebuild the model with tf_keras (the "
            "layer code is the same), load its weights, save it as .keras/.h5, and optimize that file. "
            "`tflite-deploy convert` converts Keras 3 models as they are (post-training quantization).")


def unsupported_layers(model: Any, tech: Technique) -> list[UnsupportedLayer]:
    """Layers that some stage of ``tech`` cannot handle, in model order, with the reason.

    Layers a stage has nothing to do with (no weights to prune or cluster) are not listed.
    """
    found: dict[str, str] = {}
    for stage in tech.stages:
        for name, reason in stage.unsupported(model).items():
            found.setdefault(name, reason)
    return [UnsupportedLayer(layer.name, type(layer).__name__, found[layer.name])
            for layer in model.layers if layer.name in found]


def unsupported_message(where: str, tech: Technique, layers: Sequence[UnsupportedLayer]) -> str:
    """One paragraph: the layers grouped by reason and type, each layer named once (long lists cut)."""
    by_reason: dict[str, dict[str, list[str]]] = {}
    for u in layers:
        by_reason.setdefault(u.reason, {}).setdefault(u.type, []).append(u.name)
    groups = []
    for reason, types in by_reason.items():
        shown = ", ".join(f"{t} ({_names(names)})" for t, names in types.items())
        groups.append(f"{shown}: {reason}")
    return (f"{where}: {len(layers)} layer(s) cannot be wrapped for {tech.name}. {'. '.join(groups)}. Pass "
            "skip_unsupported=True to leave them as they are and optimize the other "
            "layers, or replace them with supported layers.")


def _names(names: Sequence[str], limit: int = 6) -> str:
    more = len(names) - limit
    return ", ".join(names[:limit]) + (f" and {more} more" if more > 0 else "")
