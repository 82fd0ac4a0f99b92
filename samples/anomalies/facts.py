#!/usr/bin/env python3
"""Assemble the *.facts.json files from pieces the recorder measured (stdlib only).

  facts.py merge FACTS KEY JSONFILE          facts[KEY] = contents of JSONFILE (a program's own facts)
  facts.py put FACTS KEY JSON                facts[KEY] = JSON value (KEY may be dotted: a.b.c)
  facts.py copy FACTS KEY SRCKEY [DEFAULT]   facts[KEY] = facts[SRCKEY] (dotted paths; DEFAULT, a JSON
                                             value, if SRCKEY is missing)
  facts.py text FACTS KEY TEXTFILE           facts[KEY] = text of TEXTFILE
  facts.py nstat FACTS KEY BEFORE AFTER      facts[KEY] = {counter: after-before} from two `nstat -asz` dumps
                                             (counters that did not change are left out: absent = 0)
  facts.py iptables FACTS KEY DUMP COMMENT   facts[KEY] = packets/bytes of the rule carrying COMMENT
                                             in an `iptables -L CHAIN -v -x -n` dump (+ the dump itself)
  facts.py tshark FACTS NAME PCAP FILTER [FIELD]   facts["tshark"][NAME] = {command, count, frames}
                                             (with FIELD: also the values of that field, in frame order)
"""
import json
import os
import shlex
import subprocess
import sys


def load(path):
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {}


def save(path, facts):
    with open(path, "w") as f:
        json.dump(facts, f, indent=2, sort_keys=True)
        f.write("\n")


def put(facts, key, value):
    parts = key.split(".")
    d = facts
    for p in parts[:-1]:
        d = d.setdefault(p, {})
    d[parts[-1]] = value


def nstat_dump(path):
    out = {}
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            name, value = line.split()[:2]
            out[name] = int(value)
    return out


def main():
    cmd, fpath, key = sys.argv[1], sys.argv[2], sys.argv[3]
    rest = sys.argv[4:]
    facts = load(fpath)
    if cmd == "merge":
        with open(rest[0]) as f:
            put(facts, key, json.load(f))
    elif cmd == "put":
        put(facts, key, json.loads(rest[0]))
    elif cmd == "copy":
        v = facts
        try:
            for p in rest[0].split("."):
                v = v[int(p)] if isinstance(v, list) else v[p]
        except (KeyError, IndexError):
            if len(rest) < 2:
                raise
            v = json.loads(rest[1])
        put(facts, key, v)
    elif cmd == "text":
        with open(rest[0]) as f:
            put(facts, key, f.read())
    elif cmd == "nstat":
        before, after = nstat_dump(rest[0]), nstat_dump(rest[1])
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in sorted(set(before) | set(after))}
        put(facts, key, {k: v for k, v in delta.items() if v})
    elif cmd == "iptables":
        with open(rest[0]) as f:
            dump = f.read()
        rule = [ln for ln in dump.splitlines() if rest[1] in ln]
        assert len(rule) == 1, "expected one rule with comment %r in\n%s" % (rest[1], dump)
        pkts, nbytes = rule[0].split()[:2]
        put(facts, key, {"drop_rule_packets": int(pkts), "drop_rule_bytes": int(nbytes), "listing": dump})
    elif cmd == "tshark":
        pcap, flt = rest[0], rest[1]
        field = rest[2] if len(rest) > 2 else None
        args = ["tshark", "-r", pcap, "-Y", flt, "-T", "fields", "-e", "frame.number"]
        if field:
            args += ["-e", field]
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout.split("\n")
        rows = [ln.split("\t") for ln in out if ln.strip()]
        entry = {"command": "tshark -r %s -Y %s" % (os.path.basename(pcap), shlex.quote(flt)),
                 "count": len(rows), "frames": [int(r[0]) for r in rows]}
        if field:
            entry["field"] = field
            entry["values"] = [r[1] if len(r) > 1 else "" for r in rows]
        facts.setdefault("tshark", {})[key] = entry
    else:
        sys.exit("unknown command %s" % cmd)
    save(fpath, facts)


if __name__ == "__main__":
    main()
