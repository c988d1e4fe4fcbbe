"""Read what ``benchmark_model`` prints, TFLite's classic one and LiteRT's own, into numbers.

Pure functions over text: no adb, no TensorFlow. :func:`parse_benchmark_log` takes a whole
capture (stdout and stderr together, a copy with ``INFO:`` prefixes, LiteRT's ``INFO: [file:NN]``
and absl lines, or a logcat dump under the ``tflite``/``litert`` tags) and returns a
:class:`BenchmarkLog`; :func:`to_result` turns that into the :class:`~tflite_deploy.result.Result`
that every measuring command writes.

Modules by role: :mod:`.lines` (prefixes, numbers), :mod:`.classic` (TFLite's lines),
:mod:`.litert` (LiteRT's results block), :mod:`.profiling` (op-profiling tables), :mod:`.log`
(the parser and :class:`BenchmarkLog`), :mod:`.result` (:func:`to_result`), :mod:`.files` (logs
read from files, :func:`read_log_files`).
"""

from tflite_deploy.benchmark.parse.files import read_log_files
from tflite_deploy.benchmark.parse.log import BenchmarkLog, parse_benchmark_log
from tflite_deploy.benchmark.parse.profiling import ProfileTable
from tflite_deploy.benchmark.parse.result import to_result

__all__ = ["BenchmarkLog", "ProfileTable", "parse_benchmark_log", "read_log_files", "to_result"]
