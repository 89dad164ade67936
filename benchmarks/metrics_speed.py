"""How fast are the metrics on 10^6 scores? EER is also timed against scikit-learn's ROC curve.

    python benchmarks/metrics_speed.py --out benchmarks/results/metrics_speed.json

Scores: half bonafide N(2, 1), half spoof N(0, 1.5) (continuous, no ties). Each metric is timed
``--repeat`` times on the same arrays and the best time is reported (seconds, wall clock). The
scikit-learn EER is ``roc_curve(drop_intermediate=False)`` + argmin |FNR - FPR| (the "library
ROC" approach; no ASVspoof tie conventions, which do not matter here without ties).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import time
from pathlib import Path

import numpy as np
import scipy
import sklearn
from sklearn.metrics import roc_curve

from rlspoof.metrics import act_dcf, cllr, compute_eer, min_cllr, min_dcf
from rlspoof.provenance import cpu_name, emit_report


def sklearn_eer(bona: np.ndarray, spoof: np.ndarray) -> float:
    y = np.concatenate([np.ones(bona.size), np.zeros(spoof.size)])
    fpr, tpr, _ = roc_curve(y, np.concatenate([bona, spoof]), drop_intermediate=False)
    fnr = 1.0 - tpr
    i = int(np.argmin(np.abs(fnr - fpr)))
    return float((fnr[i] + fpr[i]) / 2)


def best_time(fn, repeat: int):
    times, value = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return min(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="total number of scores")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    n_bona = args.n // 2
    bona = rng.normal(2.0, 1.0, n_bona)
    spoof = rng.normal(0.0, 1.5, args.n - n_bona)

    metrics = {
        "eer": lambda: compute_eer(bona, spoof)[0],
        "min_dcf": lambda: min_dcf(bona, spoof)[0],
        "act_dcf": lambda: act_dcf(bona, spoof),
        "cllr": lambda: cllr(bona, spoof),
        "min_cllr": lambda: min_cllr(bona, spoof),
    }
    seconds, values = {}, {}
    for name, fn in metrics.items():
        seconds[name], values[name] = best_time(fn, args.repeat)
    sk_seconds, sk_value = best_time(lambda: sklearn_eer(bona, spoof), args.repeat)

    result = {
        "n": args.n,
        "n_bonafide": int(bona.size),
        "n_spoof": int(spoof.size),
        "repeat": args.repeat,
        "seconds": {k: round(v, 4) for k, v in seconds.items()},
        "values": values,
        "sklearn_seconds": round(sk_seconds, 4),
        "sklearn_eer": sk_value,
        "eer_speedup_vs_sklearn": round(sk_seconds / seconds["eer"], 2),
        "machine": {
            "cpu": cpu_name(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "sklearn": sklearn.__version__,
        },
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    emit_report(result, args.out)


if __name__ == "__main__":
    main()
