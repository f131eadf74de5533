#!/usr/bin/env python3
"""Builds input.jsonl of the ssh_bruteforce and auth_failure_burst cases from
the bundled samples (testdata/samples/auth.log and app-cef.log), as the syslog,
sshd (decoders/lua/scripts/sshd.lua) and CEF decoders shape them: canonical
JSON messages with the fields the detections read. Only the lines around the
two bursts are kept, plus the background lines in between.

usage: python3 make_inputs.py ../../../testdata/samples
"""
import datetime as dt, json, re, sys

SAMPLES = sys.argv[1] if len(sys.argv) > 1 else "../../../testdata/samples"

def ts_rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (".%09d" % (t.microsecond * 1000)).rstrip("0").rstrip(".") + "Z"

def msg(t, typ, logger, host, payload, fields):
    return json.dumps({"uuid": "00000000-0000-0000-0000-000000000000", "timestamp": ts_rfc3339(t), "type": typ,
                       "logger": logger, "severity": 6, "payload": payload, "env_version": "", "pid": 0,
                       "hostname": host, "fields": fields}, separators=(",", ":"), ensure_ascii=False)

def f(name, typ, v):
    return {"name": name, "type": typ, "value": [v]}

def sshd_fields(m):
    pats = [
        (r"Accepted (\S+) for (\S+) from (\S+) port (\d+)", lambda g: [f("sshd.event", "string", "accepted"), f("outcome", "string", "success"), f("method", "string", g[0]), f("user", "string", g[1]), f("src_ip", "string", g[2]), f("src_port", "integer", int(g[3]))]),
        (r"Failed (\S+) for invalid user (\S+) from (\S+) port (\d+)", lambda g: [f("sshd.event", "string", "failed_" + g[0]), f("outcome", "string", "failure"), f("method", "string", g[0]), f("user", "string", g[1]), f("invalid_user", "bool", True), f("src_ip", "string", g[2]), f("src_port", "integer", int(g[3]))]),
        (r"Failed (\S+) for (\S+) from (\S+) port (\d+)", lambda g: [f("sshd.event", "string", "failed_" + g[0]), f("outcome", "string", "failure"), f("method", "string", g[0]), f("user", "string", g[1]), f("src_ip", "string", g[2]), f("src_port", "integer", int(g[3]))]),
        (r"Invalid user (\S+) from (\S+) port (\d+)", lambda g: [f("sshd.event", "string", "invalid_user"), f("outcome", "string", "failure"), f("user", "string", g[0]), f("invalid_user", "bool", True), f("src_ip", "string", g[1]), f("src_port", "integer", int(g[2]))]),
    ]
    for p, mk in pats:
        mm = re.search(p, m)
        if mm:
            return mk(mm.groups())
    return []

def auth():
    out = []
    for line in open(SAMPLES + "/auth.log", encoding="utf-8"):
        mm = re.match(r"(\w{3} [ \d]\d \d\d:\d\d:\d\d) (\S+) sshd\[(\d+)\]: (.*)", line.rstrip("\n"))
        t = dt.datetime.strptime("2026 " + mm.group(1), "%Y %b %d %H:%M:%S").replace(tzinfo=dt.timezone.utc)
        out.append((t, mm.group(2), mm.group(4)))
    # the two bursts, with ten minutes around each
    keep = [o for o in out if re.search("198.51.100.23|203.0.113.77", o[2])]
    lo1, hi1 = keep[0][0], [k for k in keep if "198.51.100.23" in k[2]][-1][0]
    lo2 = [k for k in keep if "203.0.113.77" in k[2]][0][0]
    hi2 = keep[-1][0]
    pad = dt.timedelta(minutes=10)
    lines = []
    for t, host, m in out:
        if lo1 - pad <= t <= hi1 + pad or lo2 - pad <= t <= hi2 + pad:
            lines.append(msg(t, "syslog", "auth", host, m, sshd_fields(m)))
    return lines

def cef_unescape(v):
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), v)

def cef():
    out = []
    for line in open(SAMPLES + "/app-cef.log", encoding="utf-8"):
        mm = re.match(r"<\d+>1 (\S+) (\S+) \S+ \S+ \S+ - (CEF:.*)", line.rstrip("\n"))
        t = dt.datetime.strptime(mm.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)
        cefs = mm.group(3)
        hdr = re.split(r"(?<!\\)\|", cefs, maxsplit=7)
        ext = dict((k, cef_unescape(v)) for k, v in re.findall(r"(\w+)=((?:[^=\\]|\\.)*?)(?= \w+=|$)", hdr[7]))
        fields = [f("deviceVendor", "string", hdr[1]), f("deviceProduct", "string", hdr[2]), f("deviceVersion", "string", hdr[3]),
                  f("deviceEventClassId", "string", hdr[4]), f("name", "string", hdr[5]), f("severity", "integer", int(hdr[6]))]
        for k in ("src", "suser"):
            if k in ext:
                fields.append(f(k, "string", ext[k]))
        out.append((t, mm.group(2), cefs, fields))
    burst = [o for o in out if "192.0.2.44" in o[2]]
    lo, hi = burst[0][0] - dt.timedelta(minutes=5), burst[-1][0] + dt.timedelta(minutes=5)
    return [msg(t, "cef", "app", host, c, fs) for t, host, c, fs in out if lo <= t <= hi]

open("ssh_bruteforce/input.jsonl", "w").write("\n".join(auth()) + "\n")
open("auth_failure_burst/input.jsonl", "w").write("\n".join(cef()) + "\n")
