"""The search over float layers: bisection on the prefix of the sensitivity ranking (no TensorFlow).

The drop is close to monotone in the number of layers kept in float taken from the top of the
ranking, so the fewest that meet the budget are found by bisection in about log2(layers) trials,
instead of reverting one layer at a time (NNCF) or stopping at the first configuration that passes.
"""

from __future__ import annotations

from typing import Callable, Optional

#: ``passes(k)``: make and judge the variant with the top ``k`` layers kept float; True when its
#: drop's upper 95% end is within the budget; None when the search must stop (trials or time used up).
Probe = Callable[[int], Optional[bool]]


def fewest_float_layers(layers: int, passes: Probe, known_fail: int = 0) -> Optional[int]:
    """The smallest k in (known_fail, layers] for which ``passes(k)``, or None.

    ``known_fail``: a prefix length already known to miss the budget (0: plain full integer).
    Every k returned has been judged (the chosen point is verified, never assumed); the whole
    ranking kept float is judged only when the bisection ends there.
    """
    lo, hi = known_fail, layers  # lo misses the budget; hi is the candidate answer, judged or not
    hi_judged: Optional[bool] = None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        ok = passes(mid)
        if ok is None:
            return hi if hi_judged else None
        if ok:
            hi, hi_judged = mid, True
        else:
            lo = mid
    if hi_judged:
        return hi
    if hi <= lo:
        return None
    ok = passes(hi)  # verify the end point: the bisection only assumed it
    return hi if ok else None
