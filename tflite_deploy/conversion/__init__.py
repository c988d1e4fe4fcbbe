"""The convert verb and its adapters.

- :mod:`~tflite_deploy.conversion.run`: the verb: a source model to one artifact per recipe;
- :mod:`~tflite_deploy.conversion.tf_converter`: the TFLite converter adapter (Keras/SavedModel);
- :mod:`~tflite_deploy.conversion.aeq`: the AI Edge Quantizer adapter (a float ``.tflite``);
- :mod:`~tflite_deploy.conversion.workers`: one recipe per worker process (a crash fails one row).
"""
