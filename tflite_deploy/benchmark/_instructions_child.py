"""Run under callgrind by :mod:`tflite_deploy.benchmark.instructions`: load a model, then count only
what the toggles enclose. argv: MODEL LIB INVOKES THREADS DELEGATE EMPTY_PAIRS."""

from __future__ import annotations

import ctypes
import sys


def main(argv: list[str]) -> None:
    from tflite_deploy.tflite.runtime import TfliteModel

    model, lib_path, invokes, threads, delegate, pairs = argv
    lib = ctypes.CDLL(lib_path)
    lib.td_dump.argtypes = [ctypes.c_char_p]
    m = TfliteModel(model, threads=int(threads), delegate=delegate)
    m.fill_random_input(seed=0)  # the same input every process: data-dependent paths count alike
    inv, tog = m.interpreter.invoke, lib.td_toggle
    inv()
    inv()  # first invokes allocate and pack weights: not the steady cost
    for _ in range(int(pairs)):
        tog()
        tog()
    lib.td_dump(b"empty")
    for _ in range(int(invokes)):
        tog()
        inv()
        tog()
    lib.td_dump(b"invokes")


if __name__ == "__main__":
    main(sys.argv[1:])
