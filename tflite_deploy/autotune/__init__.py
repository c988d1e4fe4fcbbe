"""autotune: the smallest (or fastest) variant within an accuracy budget, found in few cheap trials.

Roles: :mod:`.records` (the frozen trial and result records, the Pareto front), :mod:`.search`
(bisection over the sensitivity ranking, no TensorFlow), :mod:`.session` (calibrate once, quantize
per trial), :mod:`.judge` (reference outputs once, the paired drop per trial), :mod:`.output` (the
chosen file, its recipe file, the trial log) and :mod:`.run` (the verb that ties them together).
"""
