"""Bounds checks over a ``.tflite`` flatbuffer, run before any generated accessor touches it.

The schema reader ``ai_edge_litert.schema_py_generated`` trusts the bytes: a bad offset reads past
the end, loops or asks for a huge allocation. :class:`Verifier` walks every table, vector and
string the reader is going to read (the specs below list those fields, nothing more) and raises
:class:`Corrupt` saying where the file stops holding together.
"""

from __future__ import annotations

import struct
from typing import Any, Optional


class Corrupt(Exception):
    """The flatbuffer does not hold together; the message says where."""


# Field specs: field id -> kind. Only the fields this module reads are listed (and verified).
# Kinds: ("scalar", size), ("str",), ("vec", elem_size), ("table", spec-or-None), ("tables", spec)
_BLOCKWISE_SPEC = {0: ("scalar", 4), 1: ("scalar", 4), 2: ("scalar", 4)}  # scales, zero points, block size
_QUANT_SPEC = {2: ("vec", 4), 3: ("vec", 8), 4: ("scalar", 1), 5: ("table", _BLOCKWISE_SPEC), 6: ("scalar", 4)}
_TENSOR_SPEC = {0: ("vec", 4), 1: ("scalar", 1), 2: ("scalar", 4), 3: ("str",),
                4: ("table", _QUANT_SPEC), 5: ("scalar", 1), 6: ("table", None), 7: ("vec", 4),
                10: ("scalar", 4)}
_OPERATOR_SPEC = {0: ("scalar", 4), 1: ("vec", 4), 2: ("vec", 4)}
_SUBGRAPH_SPEC = {0: ("tables", _TENSOR_SPEC), 1: ("vec", 4), 2: ("vec", 4),
                  3: ("tables", _OPERATOR_SPEC), 4: ("str",)}
_OPCODE_SPEC = {0: ("scalar", 1), 1: ("str",), 2: ("scalar", 4), 3: ("scalar", 4)}
_BUFFER_SPEC = {0: ("vec", 1), 1: ("scalar", 8), 2: ("scalar", 8)}
_METADATA_SPEC = {0: ("str",), 1: ("scalar", 4)}
_TENSORMAP_SPEC = {0: ("str",), 1: ("scalar", 4)}
_SIGDEF_SPEC = {0: ("tables", _TENSORMAP_SPEC), 1: ("tables", _TENSORMAP_SPEC), 2: ("str",),
                4: ("scalar", 4)}
_EXTBUF_SPEC = {0: ("scalar", 4), 1: ("scalar", 4), 2: ("scalar", 8), 3: ("scalar", 8)}
MODEL_SPEC = {0: ("scalar", 4), 1: ("tables", _OPCODE_SPEC), 2: ("tables", _SUBGRAPH_SPEC),
               3: ("str",), 4: ("tables", _BUFFER_SPEC), 6: ("tables", _METADATA_SPEC),
               7: ("tables", _SIGDEF_SPEC), 9: ("tables", _EXTBUF_SPEC)}
_SPEC_NAMES = {id(_QUANT_SPEC): "quantization", id(_BLOCKWISE_SPEC): "quantization details", id(_TENSOR_SPEC): "tensor",
               id(_OPERATOR_SPEC): "operator", id(_SUBGRAPH_SPEC): "subgraph",
               id(_OPCODE_SPEC): "operator code", id(_BUFFER_SPEC): "buffer",
               id(_METADATA_SPEC): "metadata", id(_TENSORMAP_SPEC): "signature tensor",
               id(_SIGDEF_SPEC): "signature", id(_EXTBUF_SPEC): "external buffer",
               id(MODEL_SPEC): "model"}


class Verifier:
    def __init__(self, buf: Any, size: int) -> None:
        self.buf = buf
        self.size = size
        # Every distinct table takes at least 4 bytes: more visits than that means offsets that
        # point at the same tables over and over (a crafted or scrambled file).
        self.budget = size // 4 + 64

    def _read(self, fmt: str, n: int, pos: int, what: str) -> int:
        if pos < 0 or pos + n > self.size:
            raise Corrupt(f"{what} at byte {pos} lies outside the file")
        return struct.unpack_from(fmt, self.buf, pos)[0]

    def table(self, pos: int, spec: Optional[dict], what: str) -> None:
        self.budget -= 1
        if self.budget < 0:
            raise Corrupt("its offsets refer to more tables than the file can hold")
        soff = self._read("<i", 4, pos, what)
        vt = pos - soff
        vt_len = self._read("<H", 2, vt, f"the field table of a {what}")
        obj_len = self._read("<H", 2, vt + 2, f"the field table of a {what}")
        if vt_len < 4 or vt_len % 2 or vt + vt_len > self.size:
            raise Corrupt(f"the field table of a {what} at byte {vt} is malformed")
        if obj_len < 4 or pos + obj_len > self.size:
            raise Corrupt(f"a {what} at byte {pos} runs past the end of the file")
        if not spec:
            return
        for fid, kind in spec.items():
            slot = 4 + 2 * fid
            if slot + 2 > vt_len:
                continue
            voff = struct.unpack_from("<H", self.buf, vt + slot)[0]
            if voff == 0:
                continue
            width = kind[1] if kind[0] == "scalar" else 4
            if voff + width > obj_len:
                raise Corrupt(f"a field of a {what} at byte {pos} lies outside it")
            fpos = pos + voff
            if kind[0] == "scalar":
                continue
            target = fpos + self._read("<I", 4, fpos, f"an offset in a {what}")
            if kind[0] == "table":
                sub = kind[1]
                self.table(target, sub, _SPEC_NAMES.get(id(sub), what + " field"))
                continue
            n = self._read("<I", 4, target, f"a vector length in a {what}")
            start = target + 4
            if kind[0] == "str":
                if n > self.size - start:
                    raise Corrupt(f"a string in a {what} at byte {target} runs past the end "
                                   f"of the file ({n} bytes)")
            elif kind[0] == "vec":
                if n * kind[1] > self.size - start:
                    raise Corrupt(f"a vector in a {what} at byte {target} runs past the end of "
                                   f"the file ({n} elements)")
            elif kind[0] == "tables":
                sub = kind[1]
                sub_name = _SPEC_NAMES.get(id(sub), "table")
                if n * 4 > self.size - start:
                    raise Corrupt(f"the list of {n} {sub_name}s at byte {target} runs past the "
                                   "end of the file")
                for i in range(n):
                    ep = start + 4 * i
                    self.table(ep + struct.unpack_from("<I", self.buf, ep)[0], sub, sub_name)
