"""The one place TensorFlow is imported, lazily.

TF-MOT needs Keras 2 (``tf_keras``), and TensorFlow picks its Keras flavour when it is first
imported, so ``TF_USE_LEGACY_KERAS=1`` must be set before that. Commands that do not need
TensorFlow (inspect, bench, devices) never call this.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType

from tflite_deploy.tflite.native_output import captured_native_stderr


def tensorflow() -> ModuleType:
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # TensorFlow's C++ start-up (oneDNN notice, CUDA probing on a CPU machine) logs to stderr
    # before TF_CPP_MIN_LOG_LEVEL applies; keep it off the user's terminal unless debugging.
    with captured_native_stderr() as log:
        import tensorflow as tf

        tf.config.list_physical_devices()  # the CUDA probe happens here, once
    if os.environ.get("TFLITE_DEPLOY_DEBUG"):
        sys.stderr.write(log[0])
    return tf


def tf_keras() -> ModuleType:
    tensorflow()
    import tf_keras

    return tf_keras


def versions() -> dict[str, str]:
    """Versions of the tools that made an artifact, for its sidecar."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from tflite_deploy import __version__

    out = {"tflite_deploy": __version__, "python": platform.python_version()}
    for pkg in ("tensorflow", "tf-keras", "tensorflow-model-optimization", "ai-edge-litert"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out
