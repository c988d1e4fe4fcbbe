"""The ``.tflite`` reader: no TensorFlow, one module per role.

* :mod:`~tflite_deploy.tflite.records`: what a read returns (``ModelReport`` and its parts);
* :mod:`~tflite_deploy.tflite.quant`: ``Quantization`` and the quantize/dequantize math (NumPy);
* :mod:`~tflite_deploy.tflite.verifier`: bounds checks over the flatbuffer before it is read;
* :mod:`~tflite_deploy.tflite.reader`: ``inspect_model`` and ``constant_values``;
* :mod:`~tflite_deploy.tflite.analysis`: what the tables mean (kind, histograms, op support).

This file imports nothing, so ``tflite_deploy.tflite.quant`` loads without the reader. Rendering
a report for the terminal is :func:`tflite_deploy.render.verbs.render_report`.
"""
