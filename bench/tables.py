#!/usr/bin/env python3
"""Turns one run's bench.json (bench/run_bench.py --json) into the tables of
bench/RESULTS.md: per shape time, TB/s over the byte floor, % of the copy
bandwidth of the same run, check, eager and torch.compile times and ratios,
and whether each target is met:
  aggregation >= 90% of copy bandwidth; phase 1 >= 80% of its byte floor
  (achieved floor bytes/s >= 80% of copy bandwidth); aggregation >= 8x faster
  than torch.compile.
Usage: python3 -m bench.tables bench.json > tables.md
"""

import json
import sys


def f(v, spec):
    return "-" if v is None else spec % v


def main():
    with open(sys.argv[1]) as fh:
        r = json.load(fh)
    info = r["info"]
    print("Card: **%s** (%d SMs, L2 %.0f MB), %s; torch %s, triton %s."
          % (info["device"], info["sms"], info["l2_bytes"] / 1e6, info["date_utc"], info["torch"],
             info["triton"]))
    print("Device-to-device copy bandwidth in the same run (bytes read + written): **%.3f TB/s** "
          "at the start, %.3f TB/s at the end." % (r["copy_TBps"], r["copy_TBps_end"]))
    print()
    for op, title in (("aggregate", "Aggregation (attnres.aggregate), bf16"),
                      ("block_score", "Phase 1 (attnres.block_score), bf16, T = 16384")):
        rows = [x for x in r["rows"] if x["op"] == op]
        if not rows:
            continue
        print("### " + title)
        print()
        if op == "aggregate":
            print("| N | T | D | floor ms | attnres ms (repeat) | TB/s | % of copy | rel. error | eager ms "
                  "| torch.compile ms | x eager | x compile | >= 90% copy | >= 8x compile |")
            print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        else:
            print("| n | S | D | floor ms | attnres ms (repeat) | TB/s | % of floor | rel. error (out, lse) "
                  "| eager ms | torch.compile ms | x eager | x compile | >= 80% floor |")
            print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for x in rows:
            c = x.get("check") or {}
            if c:
                err = "%.1e%s" % (c["rel_error"], "" if c.get("ok") else " FAIL")
                if op == "block_score":
                    err = "%.1e, %.1e%s" % (c["rel_error"], c.get("rel_error_lse", float("nan")),
                                            "" if c.get("ok") else " FAIL")
            else:
                err = "-"
            ms = "-" if "ms" not in x else "%.4f (%.4f)" % (x["ms"], x["ms_repeat"])
            pct = x.get("pct_copy")
            if op == "aggregate":
                met_bw = "-" if pct is None else ("yes" if pct >= 90 else "no")
                sp = x.get("speedup_vs_compile")
                met_c = "-" if sp is None else ("yes" if sp >= 8 else "no")
                print("| %d | %d | %d | %.3f | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    x["N"], x["T"], x["D"], x["floor_ms"], ms, f(x.get("TBps"), "%.2f"), f(pct, "%.1f"),
                    err, f(x.get("eager_ms"), "%.3f"), f(x.get("compile_ms"), "%.3f"),
                    f(x.get("speedup_vs_eager"), "%.1f"), f(sp, "%.1f"), met_bw, met_c))
            else:
                met = "-" if pct is None else ("yes" if pct >= 80 else "no")
                print("| %d | %d | %d | %.3f | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    x["n"], x["S"], x["D"], x["floor_ms"], ms, f(x.get("TBps"), "%.2f"), f(pct, "%.1f"),
                    err, f(x.get("eager_ms"), "%.3f"), f(x.get("compile_ms"), "%.3f"),
                    f(x.get("speedup_vs_eager"), "%.1f"), f(x.get("speedup_vs_compile"), "%.1f"), met))
        print()
    sw = r.get("sweep", [])
    if sw:
        ok = sum(1 for x in sw if x.get("ok"))
        n = sum(1 for x in sw if "ok" in x)
        worst = {}
        for x in sw:
            if "rel_error" in x:
                worst[x["dtype"]] = max(worst.get(x["dtype"], 0.0), x["rel_error"])
        print("Correctness sweep (odd D, small T, two random draws each): %d of %d checks passed; "
              "largest relative error %s." % (ok, n, ", ".join("%s %.1e" % kv for kv in sorted(worst.items()))))
        fails = [x for x in sw if "ok" in x and not x["ok"]]
        for x in fails:
            print("- FAIL %s draw %s: %s" % (x.get("name"), x.get("draw"),
                                              {k: x.get(k) for k in ("rel_error", "rel_error_lse",
                                                                     "all_written", "runtime_error",
                                                                     "exception")}))


if __name__ == "__main__":
    main()
