"""The autotune verb's package: the smallest (or fastest) variant within an accuracy budget, found in few cheap trials.

Roles: :mod:`.records` (the frozen trial and result records, the Pareto front), :mod:`.search`
(bisection over the sensitivity ranking, no TensorFlow), :mod:`.session` (calibrate once, quantize
per trial), :mod:`.judge` (reference outputs once, the paired drop per trial), :mod:`.output` (the
chosen file, its recipe file, the trial log) and :mod:`.run` (the verb that ties them together).

Named ``autotuning``, not ``autotune``, for the reason ``conversion`` is not ``convert``: importing a
subpackage sets it as an attribute of ``tflite_deploy``, which would hide the API function
``tflite_deploy.autotune`` (lazily re-exported from :mod:`tflite_deploy.api`).
"""
