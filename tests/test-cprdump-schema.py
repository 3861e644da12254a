#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
test-cprdump-schema.py - every JSON document cprdump prints validates
against spec/cprdump.schema.json.

A small JSON Schema validator (Python 3 standard library only) covering
the keywords the schema uses; an unknown keyword in the schema is an
error, so the schema cannot silently rely on something unchecked.  The
validator is first shown to reject broken documents, then cprdump is run
on: the golden arenas, every QEMU 10.2 capture, corrupted and
unsupported inputs, diffs, conversions, a live state-holder process
(--pid, /proc/PID/fd/N, check-live before and after an fd is closed),
and a gcore core of it.

usage: test-cprdump-schema.py CPRDUMP SCHEMA VECTORS-DIR DATA-DIR HOLDER
"""
import copy
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile

ANNOTATIONS = {"$schema", "$id", "$comment", "title", "description",
               "$defs"}
KEYWORDS = {"$ref", "type", "enum", "const", "properties", "required",
            "additionalProperties", "items", "minItems", "maxItems",
            "minimum", "maximum", "minLength", "maxLength", "pattern",
            "oneOf", "anyOf", "allOf", "not"} | ANNOTATIONS

TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float))
    and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def check_schema(schema, path="#"):
    """Every keyword of the schema must be one the validator knows."""
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise ValueError(f"{path}: a schema must be an object")
    for key, value in schema.items():
        if key not in KEYWORDS:
            raise ValueError(f"{path}: keyword {key!r} is not supported")
        if key in ("properties", "$defs"):
            for name, sub in value.items():
                check_schema(sub, f"{path}/{key}/{name}")
        elif key in ("items", "additionalProperties", "not"):
            check_schema(value, f"{path}/{key}")
        elif key in ("oneOf", "anyOf", "allOf"):
            for i, sub in enumerate(value):
                check_schema(sub, f"{path}/{key}/{i}")


def resolve(root, ref):
    if not ref.startswith("#/"):
        raise ValueError(f"only local references: {ref}")
    node = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def equal(a, b):
    """JSON equality: 1 is not true, 1 is 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def validate(inst, schema, root, path="$"):
    """The list of errors of @inst against @schema (empty when valid)."""
    if schema is True:
        return []
    if schema is False:
        return [f"{path}: not allowed"]
    errors = []
    if "$ref" in schema:
        errors += validate(inst, resolve(root, schema["$ref"]), root, path)
    if "type" in schema:
        types = schema["type"]
        types = types if isinstance(types, list) else [types]
        if not any(TYPES[t](inst) for t in types):
            return errors + [f"{path}: {inst!r} is not of type {types}"]
    if "enum" in schema and not any(equal(inst, e) for e in schema["enum"]):
        errors.append(f"{path}: {inst!r} not in {schema['enum']}")
    if "const" in schema and not equal(inst, schema["const"]):
        errors.append(f"{path}: {inst!r} is not {schema['const']!r}")
    if TYPES["number"](inst):
        if "minimum" in schema and inst < schema["minimum"]:
            errors.append(f"{path}: {inst} < {schema['minimum']}")
        if "maximum" in schema and inst > schema["maximum"]:
            errors.append(f"{path}: {inst} > {schema['maximum']}")
    if isinstance(inst, str):
        if "minLength" in schema and len(inst) < schema["minLength"]:
            errors.append(f"{path}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(inst) > schema["maxLength"]:
            errors.append(f"{path}: longer than {schema['maxLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], inst):
            errors.append(f"{path}: {inst!r} !~ /{schema['pattern']}/")
    if isinstance(inst, list):
        if "minItems" in schema and len(inst) < schema["minItems"]:
            errors.append(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(inst) > schema["maxItems"]:
            errors.append(f"{path}: more than {schema['maxItems']} items")
        if "items" in schema:
            for i, item in enumerate(inst):
                errors += validate(item, schema["items"], root,
                                   f"{path}[{i}]")
    if isinstance(inst, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in inst:
                errors.append(f"{path}: missing {name!r}")
        for name, value in inst.items():
            if name in props:
                errors += validate(value, props[name], root,
                                   f"{path}.{name}")
            elif "additionalProperties" in schema:
                errors += validate(value, schema["additionalProperties"],
                                   root, f"{path}.{name}")
    for sub in schema.get("allOf", []):
        errors += validate(inst, sub, root, path)
    if "anyOf" in schema:
        if not any(not validate(inst, s, root, path)
                   for s in schema["anyOf"]):
            errors.append(f"{path}: matches none of anyOf")
    if "oneOf" in schema:
        results = [validate(inst, s, root, path) for s in schema["oneOf"]]
        good = sum(1 for r in results if not r)
        if good != 1:
            detail = min(results, key=len) if good == 0 else []
            errors.append(f"{path}: matches {good} of oneOf, not 1"
                          + (f" (closest: {detail[:3]})" if detail else ""))
    if "not" in schema and not validate(inst, schema["not"], root, path):
        errors.append(f"{path}: matches a 'not' schema")
    return errors


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError(f"duplicate member in {keys}")
    return dict(pairs)


def reject_constant(name):
    raise ValueError(f"{name} is not JSON")


class Checker:
    def __init__(self, cprdump, schema):
        self.cprdump = cprdump
        self.schema = schema
        self.count = 0
        self.failures = []
        self.commands = set()

    def run(self, args, expect_rc, cwd=None, stdin=None):
        p = subprocess.run([self.cprdump] + args, cwd=cwd, stdin=stdin,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=120)
        if p.returncode != expect_rc:
            self.failures.append(f"cprdump {' '.join(args)}: exit "
                                 f"{p.returncode}, expected {expect_rc}; "
                                 f"stderr: {p.stderr.decode()!r}")
        return p

    def json(self, args, expect_rc=0, cwd=None, stdin=None):
        p = self.run(args, expect_rc, cwd, stdin)
        text = p.stdout.decode("ascii")
        try:
            doc = json.loads(text, object_pairs_hook=no_duplicates,
                             parse_constant=reject_constant)
        except ValueError as e:
            self.failures.append(f"cprdump {' '.join(args)}: not JSON: {e}")
            return None
        if not text.endswith("}\n"):
            self.failures.append(f"cprdump {' '.join(args)}: no final "
                                 "newline")
        errors = validate(doc, self.schema, self.schema)
        if errors:
            self.failures.append(f"cprdump {' '.join(args)}: "
                                 + "; ".join(errors[:5]))
        self.count += 1
        self.commands.add(doc.get("command"))
        return doc


def expect(cond, what, failures):
    if not cond:
        failures.append(what)


def validator_self_test(schema, doc, failures):
    """The validator must reject documents that break the schema."""
    mutations = [
        ("no schema-version", lambda d: d.pop("schema-version")),
        ("unknown member", lambda d: d.__setitem__("extra", 1)),
        ("fd id as string", lambda d: d["fds"][0].__setitem__("id", "0")),
        ("negative slot", lambda d: d["fds"][0].__setitem__("slot", -1)),
        ("bool as integer", lambda d: d["fds"][0].__setitem__("slot", True)),
        ("bad kind", lambda d: d["fds"][0].__setitem__("kind", "floppy")),
        ("no verification", lambda d: d.pop("verification")),
        ("bad status", lambda d: d["verification"].__setitem__(
            "status", "fine")),
        ("no parts", lambda d: d.pop("parts")),
        ("unknown part", lambda d: d["parts"].append("disks")),
        ("arena with legacy", lambda d: d.__setitem__("legacy", {})),
        ("uint64 overflow", lambda d: d["header"].__setitem__(
            "arena-size", 2 ** 64)),
        ("bad build-id", lambda d: d["header"].__setitem__(
            "build-id", "xyz")),
        ("bad command", lambda d: d.__setitem__("command", "dump")),
        ("major version 2", lambda d: d.__setitem__("schema-version",
                                                    "2.0")),
    ]
    if validate(doc, schema, schema):
        failures.append("self-test: the reference document is invalid")
    for what, mutate in mutations:
        bad = copy.deepcopy(doc)
        mutate(bad)
        if not validate(bad, schema, schema):
            failures.append(f"self-test: validator accepted: {what}")


def limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 30, 1 << 30))


def start_holder(holder, *args):
    p = subprocess.Popen([holder] + list(args), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, bufsize=1)
    fds = {}
    while True:
        line = p.stdout.readline()
        if not line:
            raise RuntimeError("state-holder exited early")
        words = line.split()
        if words[0] == "FD":
            fds[" ".join(words[1:-1])] = int(words[-1])
        elif words[0] == "READY":
            return p, int(words[1]), int(words[2]), fds


def holder_cmd(p, cmd):
    p.stdin.write(cmd + "\n")
    p.stdin.flush()
    return p.stdout.readline().strip()


def stop_holder(p):
    try:
        holder_cmd(p, "quit")
    except (BrokenPipeError, OSError):
        pass
    p.wait(timeout=30)


def main():
    cprdump, schema_path, vectors, data, holder = sys.argv[1:6]
    with open(schema_path) as f:
        schema = json.load(f)
    check_schema(schema)
    c = Checker(cprdump, schema)
    work = tempfile.mkdtemp(prefix="cprdump-schema-")
    try:
        run_all(c, schema, vectors, data, holder, work)
    finally:
        shutil.rmtree(work)
    for f in c.failures:
        print("FAIL:", f)
    print(f"{c.count} JSON documents validated, commands "
          f"{sorted(x for x in c.commands if x)}, "
          f"{len(c.failures)} failures")
    return 1 if c.failures or c.count < 40 else 0


def run_all(c, schema, vectors, data, holder, work):
    arenas = sorted(os.path.join(vectors, f) for f in os.listdir(vectors)
                    if f.endswith(".cprs"))
    captures = []
    for scen in sorted(os.listdir(os.path.join(data, "qemu-10.2"))):
        d = os.path.join(data, "qemu-10.2", scen)
        captures += sorted(os.path.join(d, f) for f in os.listdir(d)
                           if f.endswith(".bin"))
    expect(len(arenas) >= 4 and len(captures) >= 9,
           "vectors or captures missing", c.failures)

    for path in arenas + captures:
        doc = c.json(["--json", path])
        c.json(["verify", "--json", path])
        if doc and doc["format"] == "arena" and doc["fds"]:
            validator_self_test(schema, doc, c.failures)
        if doc and path in captures:
            expect(doc["format"] == "legacy" and doc["fds"],
                   f"{path}: not decoded as a legacy stream", c.failures)
            expect(all((f["fd"] is None) == (doc["mode"] == "cpr-transfer")
                       for f in doc["fds"]),
                   f"{path}: fd must be null exactly in cpr-transfer",
                   c.failures)

    # Standard input, and damaged inputs: the verdicts are in the schema.
    with open(arenas[-1], "rb") as f:
        c.json(["--json", "-"], stdin=f)
    q35 = os.path.join(vectors, "qemu-q35-memfd.cprs")
    with open(q35, "rb") as f:
        good = bytearray(f.read())
    bad = bytearray(good)
    bad[-1] ^= 1
    path = os.path.join(work, "corrupt.cprs")
    with open(path, "wb") as f:
        f.write(bad)
    doc = c.json(["verify", "--json", path], expect_rc=2)
    expect(doc and doc["verification"]["status"] == "invalid",
           "corrupt arena: not invalid", c.failures)
    c.json(["--json", path], expect_rc=2)
    bad = bytearray(good)
    bad[8] = 2          # version_major 2
    with open(path, "wb") as f:
        f.write(bad)
    doc = c.json(["verify", "--json", path], expect_rc=3)
    expect(doc and doc["verification"]["status"] == "unsupported",
           "major version 2: not unsupported", c.failures)
    cap = os.path.join(data, "qemu-10.2", "a-q35-memfd", "capture.bin")
    with open(cap, "rb") as f:
        stream = f.read()
    path = os.path.join(work, "trailing.bin")
    with open(path, "wb") as f:
        f.write(stream + b"\x00\x00")
    doc = c.json(["--json", path], expect_rc=2)
    expect(doc and doc["legacy"]["decoded-leniently"],
           "trailing bytes: not shown leniently", c.failures)
    doc = c.json(["verify", "--json", "--lenient", path])
    expect(doc and doc["warnings"], "--lenient: no warning", c.failures)

    # diff: identical, different, across formats.
    c.json(["diff", "--json", q35, q35])
    c.json(["diff", "--json", arenas[0], arenas[1]], expect_rc=1)
    c.json(["diff", "--json", captures[0], captures[-1]], expect_rc=1)
    conv = os.path.join(work, "conv.cprs")
    c.run(["convert", "-q", "--to", "arena", cap, conv], 0)
    doc = c.json(["diff", "--json", cap, conv], expect_rc=1)
    expect(doc and [h["field"] for h in doc["header"]] == ["format"],
           "legacy vs converted arena: only the format differs", c.failures)
    doc = c.json(["diff", "--json", "--records-only", cap, conv])
    expect(doc and doc["identical"], "records-only diff not identical",
           c.failures)

    # A live process holding its state as QEMU does, then a core of it.
    p, pid, state_fd, fds = start_holder(holder, "--map")
    try:
        c.json(["--json", "--pid", str(pid)])
        doc = c.json(["--json", f"/proc/{pid}/fd/{state_fd}"])
        expect(doc and doc["source"]["kind"] == "proc-fd",
               "proc-fd source kind", c.failures)
        doc = c.json(["check-live", "--json", str(pid)])
        expect(doc and doc["summary"]["mismatches"] == 0,
               "check-live: mismatches on a healthy process", c.failures)
        if shutil.which("gcore"):
            # Shared anonymous memory only (the memfd mapping): a small
            # core even under ASan, and never more than 1 GiB on disk.
            expect(holder_cmd(p, "filter 0x2") == "OK", "holder filter",
                   c.failures)
            core = os.path.join(work, "core")
            g = subprocess.run(["gcore", "-o", core, str(pid)],
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=300,
                               preexec_fn=limit_file_size)
            expect(g.returncode == 0, "gcore failed", c.failures)
            doc = c.json(["--json", f"{core}.{pid}"])
            expect(doc and doc["source"]["core"]["found-by"] == "nt-file",
                   "core: not found through NT_FILE", c.failures)
        else:
            print("gcore not installed: the core document is not checked")
        expect(holder_cmd(p, "close ram0") == "OK", "holder close",
               c.failures)
        doc = c.json(["check-live", "--json", str(pid)], expect_rc=1)
        expect(doc and doc["summary"]["mismatches"] >= 2,
               "check-live: closed fd not found", c.failures)
    finally:
        stop_holder(p)
    p, pid, state_fd, fds = start_holder(holder, "--legacy")
    p2, pid2, _, _ = start_holder(holder)
    try:
        doc = c.json(["--json", "--pid", str(pid)])
        expect(doc and doc["format"] == "legacy", "legacy holder",
               c.failures)
        c.json(["check-live", "--json", str(pid)])
        # Several sources: one document whose results hold one each.
        doc = c.json(["--json", "--pid", str(pid), str(pid2)])
        expect(doc and [r["source"]["pid"] for r in doc["results"]] ==
               [pid, pid2], "show --pid A B: results", c.failures)
        c.json(["verify", "--json", "--pid", f"{pid},{pid2}"])
        c.json(["check-live", "--json", str(pid), str(pid2)])
        doc = c.json(["verify", "--json", q35, "/nonexistent"],
                     expect_rc=1)
        expect(doc and doc["results"][1]["error"] == "ENOENT",
               "verify A missing: a load error", c.failures)
        # list: both holders, each with its verdict.
        doc = c.json(["list", "--json"])
        got = {e["pid"]: e for e in doc["processes"]} if doc else {}
        expect(got.get(pid, {}).get("format") == "legacy" and
               got.get(pid2, {}).get("format") == "arena",
               "list: the two holders", c.failures)
    finally:
        stop_holder(p)
        stop_holder(p2)
    # Selectors: only the parts asked for.
    doc = c.json(["--json", "--fds", q35])
    expect(doc and doc["parts"] == ["fds"] and "header" not in doc and
           "ram-blocks" not in doc and doc["fds"],
           "show --fds: only the fd records", c.failures)
    doc = c.json(["--json", "--header", "--ram", cap])
    expect(doc and doc["parts"] == ["header", "ram"] and "legacy" in doc
           and doc["ram-blocks"] == [] and "fds" not in doc,
           "show --header --ram of a stream", c.failures)


if __name__ == "__main__":
    sys.exit(main())
