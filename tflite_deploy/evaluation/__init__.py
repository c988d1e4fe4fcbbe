"""The eval verb: variants against the float reference, with honest uncertainty.

- :mod:`~tflite_deploy.evaluation.run`: accuracy, agreement and the paired drop interval;
- :mod:`~tflite_deploy.evaluation.layer_errors`: per-layer error (TFLite's QuantizationDebugger);
- :mod:`~tflite_deploy.evaluation.provenance`: which source model a file was made from.
"""
