"""Write tests/reference/network_time_input.json: the bundled evidence's disability network over time, as the
stacked differences, their sampling covariance and design (src/mt_evidence/stats/network_time.py), for
make_network_time_reference.R to fit with metafor's rma.mv. Run from the repository root (`make reference`)."""

import json
from pathlib import Path

import numpy as np

import mt_evidence as me
from mt_evidence.stats import network_time as NT
from mt_evidence.synthesis import network as SN

OUT = Path(__file__).with_name("network_time_input.json")


def main() -> None:
    ev = me.load_evidence()
    arms, con, reference, _ = SN.network_over_time_input(ev, "disability")
    cfg = SN.A.load_config()
    times = [w.name for w in cfg.windows]
    by_time, treatments = {}, set()
    for t in times:
        a = arms[arms["time"] == t].drop(columns=["time"])
        c = con[con["time"] == t].drop(columns=["time"])
        data, extra = (a, c if len(c) else None) if len(a) else (c, None)
        if data.empty:
            continue
        studies, treats, _ = NT.prepare_studies(data, extra, None)
        by_time[t] = studies
        treatments |= set(treats)
    order = [reference] + sorted(treatments - {reference})
    rows = NT.time_model_matrices(by_time, order, 0.5)
    keep = np.abs(rows.X).sum(axis=0) > 0
    cols = [f"{t}:{k}" for t in by_time for k in order[1:]]
    r = rows.rows
    OUT.write_text(json.dumps({
        "source": "bundled evidence (data/raw), outcome disability, windows " + ", ".join(by_time)
                  + f", reference {reference}, rho_within 0.5",
        "y": rows.y.tolist(), "V": rows.V.tolist(), "X": rows.X[:, keep].tolist(),
        "columns": [c for c, k in zip(cols, keep) if k],
        "study": r["study"].tolist(), "time": r["time"].tolist(),
        "comp": (r["treat"] + "|" + r["base"]).tolist(),
    }, indent=1))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
