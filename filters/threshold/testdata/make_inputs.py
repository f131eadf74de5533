#!/usr/bin/env python3
"""Builds input.jsonl of the flood cases from shared/samples/conn.log (a Zeek
conn log with a port scan from 10.1.2.99): the rows around the scan as the
Zeek decoder shapes them (fields id.orig_h, id.orig_p, id.resp_h, id.resp_p,
proto, conn_state).

usage: python3 make_inputs.py ../../../../shared/samples
"""
import datetime as dt, json, sys

SAMPLES = sys.argv[1] if len(sys.argv) > 1 else "../../../../shared/samples"
rows = []
for line in open(SAMPLES + "/conn.log", encoding="utf-8"):
    if line.startswith("#"):
        continue
    c = line.rstrip("\n").split("\t")
    rows.append(c)
scan = [i for i, c in enumerate(rows) if c[2] == "10.1.2.99"]
out = []
for c in rows[scan[0] - 100: scan[-1] + 100]:
    sec, frac = c[0].split(".")
    t = dt.datetime.fromtimestamp(int(sec), dt.timezone.utc)
    ts = t.strftime("%Y-%m-%dT%H:%M:%S") + "." + frac + "Z"
    f = lambda n, t, v: {"name": n, "type": t, "value": [v]}
    fields = [f("id.orig_h", "string", c[2]), f("id.orig_p", "integer", int(c[3])), f("id.resp_h", "string", c[4]),
              f("id.resp_p", "integer", int(c[5])), f("proto", "string", c[6]), f("conn_state", "string", c[11])]
    out.append(json.dumps({"uuid": "00000000-0000-0000-0000-000000000000", "timestamp": ts, "type": "zeek.conn",
                           "logger": "zeek", "severity": 6, "payload": "", "env_version": "", "pid": 0,
                           "hostname": "sensor1", "fields": fields}, separators=(",", ":")))
for case in ("flood_attacker", "flood_victim"):
    open(case + "/input.jsonl", "w").write("\n".join(out) + "\n")
