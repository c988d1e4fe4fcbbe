"""A separate process that writes results one by one: ``python -m tests.store.writer STORE TAG N [DELAY]``.

Prints ``wrote I`` after each committed result, so a test knows how far it got before killing it.
"""

from __future__ import annotations

import sys
import time

from tests.store.helpers import bench_result
from tflite_deploy.store import open_store


def main() -> None:
    store, tag, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    delay = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    with open_store(store) as st:
        run = st.start_run(tag=tag, argv=sys.argv)
        for i in range(count):
            st.add_result(run, bench_result(f"{tag}-m{i}", "int8", seed=i, n=200))
            print(f"wrote {i}", flush=True)
            if delay:
                time.sleep(delay)


if __name__ == "__main__":
    main()
