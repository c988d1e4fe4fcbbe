"""Affine quantization of a tensor and its arithmetic, as the TFLite kernels do it (pure NumPy).

:class:`Quantization` holds a tensor's scales and zero points; :func:`quantize` and
:func:`dequantize` apply them, per tensor or per axis. This module imports nothing else of
``tflite_deploy``, so the LiteRT runtime can take the math without the flatbuffer reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FLOAT_DTYPES = frozenset({"float32", "float16", "bfloat16", "float64"})
#: TFLite dtype names (as the reader spells them) to NumPy dtype names.
NUMPY_DTYPES = {
    "float32": "float32", "float16": "float16", "float64": "float64", "int8": "int8",
    "uint8": "uint8", "int16": "int16", "uint16": "uint16", "int32": "int32", "uint32": "uint32",
    "int64": "int64", "uint64": "uint64", "bool": "bool",
}


@dataclass(frozen=True)
class Quantization:
    """Affine quantization of a tensor: ``real = (q - zero_point) * scale``.

    One scale means per-tensor; several mean per-axis (per-channel) along ``quantized_dimension``.
    """

    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    quantized_dimension: int = 0

    @property
    def num_scales(self) -> int:
        return len(self.scales)

    @property
    def per_channel(self) -> bool:
        return len(self.scales) > 1

    @property
    def scale(self) -> float:
        """The scale of a per-tensor quantization (raises for per-channel)."""
        if len(self.scales) != 1:
            raise ValueError(f"per-channel quantization has {len(self.scales)} scales, not one")
        return self.scales[0]

    @property
    def zero_point(self) -> int:
        if len(self.scales) != 1:
            raise ValueError(f"per-channel quantization has {len(self.scales)} scales, not one")
        return self.zero_points[0] if self.zero_points else 0


def _broadcast_params(quant: Quantization, ndim: int):
    import numpy as np

    scales = np.asarray(quant.scales, dtype=np.float64)
    zps = np.asarray(quant.zero_points or (0,) * len(quant.scales), dtype=np.float64)
    if zps.size == 1 and scales.size > 1:
        zps = np.repeat(zps, scales.size)
    if scales.size > 1:
        axis = quant.quantized_dimension
        if not 0 <= axis < ndim:
            raise ValueError(f"quantized dimension {axis} is out of range for a {ndim}-D array")
        shape = [1] * ndim
        shape[axis] = scales.size
        scales = scales.reshape(shape)
        zps = zps.reshape(shape)
    return scales, zps


def dequantize(values: Any, quant: Quantization) -> Any:
    """Quantized values to float32: ``(q - zero_point) * scale``, per axis when per-channel."""
    import numpy as np

    q = np.asarray(values)
    if not quant.scales:
        raise ValueError("no scales: the tensor is not quantized")
    scales, zps = _broadcast_params(quant, q.ndim)
    return ((q.astype(np.float64) - zps) * scales).astype(np.float32)


def quantize(values: Any, quant: Quantization, dtype: str = "int8") -> Any:
    """Float values to ``dtype`` with ``quant``: ``round(x / scale) + zero_point``, clipped.

    Rounds half away from zero, as TFLite's ``QUANTIZE`` kernel does (``std::round``).
    """
    import numpy as np

    if not quant.scales:
        raise ValueError("no scales: the tensor is not quantized")
    np_dtype = np.dtype(NUMPY_DTYPES.get(dtype, dtype))
    if np_dtype.kind not in "iu":
        raise ValueError(f"cannot quantize to {dtype}: not an integer dtype")
    x = np.asarray(values, dtype=np.float32)
    scales, zps = _broadcast_params(quant, x.ndim)
    v = (x / scales.astype(np.float32)).astype(np.float64)  # float32 division, as the kernel does
    v = np.sign(v) * np.floor(np.abs(v) + 0.5) + zps
    info = np.iinfo(np_dtype)
    return np.clip(v, info.min, info.max).astype(np_dtype)
