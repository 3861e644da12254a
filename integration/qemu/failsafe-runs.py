#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fail-safe cpr-exec against real QEMU binaries (TESTED.md, section 14).

    failsafe-runs.py --patched QEMU --stock QEMU [--stock-noiommufd QEMU]
                     [--cprdump CPRDUMP] --work DIR [SCENARIO...]

Starts real QEMU processes (TCG, no guest OS: the firmware runs), drives
them over QMP (unix sockets) and checks what the fail-safe cpr-exec of
integration/qemu/ promises.  Standard library only.  Scenarios (all
when none is named):

  to-stock           patched -> stock QEMU, the source started with an
                     empty environment: the VM runs in the stock QEMU
  to-stock-noiommufd the same to a stock QEMU built without iommufd
  transfer-to-stock  cpr-transfer, patched (empty environment) -> stock:
                     the peer is inspected, the VM runs in the stock QEMU
  wrapper            patched -> a #! script that execs the stock QEMU
                     (an uncertain target): the VM runs there
  refuse-missing     cpr-exec-command names no file: the migration is
                     refused, the VM runs on in the source
  refuse-strict      QEMU_CPR_STATE_FORMAT=strict and the wrapper: refused
  rollback           patched -> patched whose device configuration does
                     not match (no pvpanic-pci): migrate-incoming fails,
                     the VM resumes in the previous QEMU, same pid; the VM
                     was paused: guest RAM (all of it) before == after
  rollback-running   the same with the VM running: it runs again
  rollback-deleted   the source's executable is deleted from disk before
                     the hop: the rollback still resumes the VM in it
  rollback-then-hop  after a rollback, the resumed QEMU hops again, to a
                     QEMU that matches: the VM runs there

Exit status: 0 if every scenario passed, 1 otherwise.
"""

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time

TIMEOUT = 60.0


class Qmp:
    """A QMP client on a unix socket (events are kept, not interpreted)."""

    def __init__(self, path, timeout=TIMEOUT):
        # A socket left by an image that has exec'd since may accept and
        # then reset: retry until a QEMU greets.
        deadline = time.monotonic() + timeout
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.buf = b""
            self.events = []
            try:
                self.sock.connect(path)
                self.sock.settimeout(5.0)
                self.greeting = self._recv()
                break
            except (OSError, EOFError, ValueError):
                self.sock.close()
                if time.monotonic() > deadline:
                    raise RuntimeError("no QMP on %s" % path)
                time.sleep(0.05)
        self.sock.settimeout(timeout)
        self.cmd("qmp_capabilities")

    def _recv(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("QMP connection closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self._recv()
            if "event" in r:
                self.events.append(r)
                continue
            if "error" in r:
                raise QmpError(name, r["error"])
            return r["return"]

    def wait_closed(self, timeout=TIMEOUT):
        self.sock.settimeout(timeout)
        try:
            while True:
                r = self._recv()
                if "event" in r:
                    self.events.append(r)
        except (EOFError, OSError):
            pass
        self.sock.close()

    def close(self):
        self.sock.close()


class QmpError(Exception):
    def __init__(self, cmd, err):
        super().__init__("%s: %s" % (cmd, err.get("desc", err)))
        self.err = err


class Run:
    def __init__(self, args, name):
        self.a = args
        self.name = name
        self.dir = os.path.join(args.work, name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.proc = None
        self.log = []

    def path(self, what):
        return os.path.join(self.dir, what)

    def say(self, fmt, *args):
        line = fmt % args if args else fmt
        self.log.append(line)
        print("  [%s] %s" % (self.name, line), flush=True)

    def vm_args(self, qmp, pvpanic=True):
        args = ["-accel", "tcg", "-nodefaults", "-display", "none",
                "-m", "128M",
                "-machine", "q35,memory-backend=ram0,aux-ram-share=on",
                "-object", "memory-backend-memfd,id=ram0,size=128M,share=on",
                "-qmp", "unix:%s,server=on,wait=off" % self.path(qmp)]
        if pvpanic:
            args += ["-device", "pvpanic-pci"]
        return args

    def start(self, exe, env=None, qmp="src.qmp", extra=()):
        self.stderr = open(self.path("stderr.log"), "w")
        argv = [exe] + self.vm_args(qmp) + list(extra)
        self.say("start: %s%s", "env -i " if env == {} else
                 "env -i %s " % " ".join("%s=%s" % kv for kv in env.items())
                 if env else "", " ".join(argv))
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.stderr, stderr=self.stderr,
                                     cwd=self.dir)
        self.qmp = Qmp(self.path(qmp))
        return self.qmp

    def exe(self):
        return os.readlink("/proc/%d/exe" % self.proc.pid)

    def status(self, qmp):
        return qmp.cmd("query-status")["status"]

    def wait_status(self, qmp, want, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            st = self.status(qmp)
            if st in want:
                return st
            if time.monotonic() > deadline:
                raise RuntimeError("status %s, expected %s" % (st, want))
            time.sleep(0.1)

    def ram_sha256(self, qmp, tag):
        out = self.path("ram-%s.bin" % tag)
        qmp.cmd("pmemsave", val=0, size=128 << 20, filename=out)
        with open(out, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        os.unlink(out)
        return digest

    def cpr_exec(self, qmp, command):
        state = self.path("vm.state")
        cmd = command + ["-incoming", "file:" + state]
        self.say("cpr-exec-command: %s", " ".join(cmd))
        qmp.cmd("migrate-set-parameters", mode="cpr-exec",
                **{"cpr-exec-command": cmd})
        qmp.cmd("migrate", uri="file:" + state)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc and self.alive():
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()

    def stderr_text(self):
        self.stderr.flush()
        with open(self.path("stderr.log")) as f:
            return f.read()


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def hop_to(run, target_exe, target_env=None, expect_format=None):
    """Source: patched (env -i); target: @target_exe; VM runs there."""
    a = run.a
    q = run.start(a.patched, env=dict(a.env))
    pid = run.proc.pid
    run.wait_status(q, ["running"])
    time.sleep(1.0)
    run.cpr_exec(q, [target_exe] + run.vm_args("tgt.qmp"))
    q.wait_closed()
    t = Qmp(run.path("tgt.qmp"))
    st = run.wait_status(t, ["running"])
    exe = run.exe()
    run.say("after the hop: pid %d (was %d), exe %s, status %s",
            run.proc.pid, pid, exe, st)
    check(os.path.realpath(exe) == os.path.realpath(a.stock_now),
          "the stock QEMU runs the VM")
    err = run.stderr_text()
    if expect_format:
        check("writing the %s format" % expect_format in err,
              "the source said it writes %s" % expect_format)
    for line in err.splitlines():
        if "cpr" in line:
            run.say("stderr: %s", line.strip())
    t.close()


def sc_to_stock(run):
    run.a.stock_now = run.a.stock
    hop_to(run, run.a.stock, expect_format="legacy")


def sc_to_stock_noiommufd(run):
    if not run.a.stock_noiommufd:
        raise SkipTest("no --stock-noiommufd")
    run.a.stock_now = run.a.stock_noiommufd
    hop_to(run, run.a.stock_noiommufd, expect_format="legacy")


def sc_transfer_to_stock(run):
    """cpr-transfer, patched (env -i) -> stock: pre-flight on the peer."""
    a = run.a
    cpr_sock, mig_sock = run.path("cpr.sock"), run.path("mig.sock")
    cpr = {"channel-type": "cpr",
           "addr": {"transport": "socket", "type": "unix", "path": cpr_sock}}
    main = {"channel-type": "main",
            "addr": {"transport": "socket", "type": "unix", "path": mig_sock}}
    q = run.start(a.patched, env=dict(a.env))
    pid = run.proc.pid
    run.wait_status(q, ["running"])
    tlog = open(run.path("target-stderr.log"), "w")
    targv = [a.stock] + run.vm_args("tgt.qmp") + [
        "-incoming", json.dumps(main), "-incoming", json.dumps(cpr)]
    run.say("target: %s", " ".join(targv))
    target = subprocess.Popen(targv, env={}, stdin=subprocess.DEVNULL,
                              stdout=tlog, stderr=tlog, cwd=run.dir)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not os.path.exists(cpr_sock):
            check(time.monotonic() < deadline, "the target listens")
            time.sleep(0.05)
        q.cmd("migrate-set-parameters", mode="cpr-transfer")
        q.cmd("migrate", channels=[main, cpr])
        t = Qmp(run.path("tgt.qmp"))
        st = run.wait_status(t, ["running"])
        info = q.cmd("query-migrate")
        run.say("source pid %d: migration %s, status %s; target pid %d "
                "(exe %s): %s", pid, info.get("status"), run.status(q),
                target.pid, os.readlink("/proc/%d/exe" % target.pid), st)
        err = run.stderr_text()
        for line in err.splitlines():
            if "cpr" in line:
                run.say("stderr: %s", line.strip())
        check("is stock-qemu" in err and "writing the legacy format" in err,
              "pre-flight found the stock peer")
        t.close()
    finally:
        if target.poll() is None:
            target.kill()
            target.wait()
        tlog.close()


def write_wrapper(run, target):
    path = run.path("qemu-wrapper.sh")
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexec %s \"$@\"\n" % target)
    os.chmod(path, 0o755)
    return path


def sc_wrapper(run):
    run.a.stock_now = run.a.stock
    hop_to(run, write_wrapper(run, run.a.stock), expect_format="dual")


def refused(run, command, env):
    q = run.start(run.a.patched, env=dict(run.a.env, **env))
    run.wait_status(q, ["running"])
    try:
        run.cpr_exec(q, command)
        info = None
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            info = q.cmd("query-migrate")
            if info.get("status") in ("failed", "completed"):
                break
            time.sleep(0.1)
        run.say("query-migrate: status %s, error-desc: %s",
                info.get("status"), info.get("error-desc"))
        check(info.get("status") == "failed", "the migration failed")
    except QmpError as e:
        run.say("migrate refused: %s", e)
    check(run.alive(), "the source still runs")
    st = run.wait_status(q, ["running"])
    run.say("source pid %d, exe %s, status %s", run.proc.pid, run.exe(), st)
    check(os.path.realpath(run.exe()) == os.path.realpath(run.a.patched),
          "no exec happened")


def sc_refuse_missing(run):
    refused(run, [run.path("no-such-qemu")] + run.vm_args("tgt.qmp"), {})


def sc_refuse_strict(run):
    refused(run, [write_wrapper(run, run.a.stock)] + run.vm_args("tgt.qmp"),
            {"QEMU_CPR_STATE_FORMAT": "strict"})


def rollback(run, running, deleted=False, again=False):
    a = run.a
    src = a.patched
    extra = []
    if deleted:
        # A copy, which finds its firmware through -L.
        src = run.path("qemu-previous")
        shutil.copy2(a.patched, src)
        extra = ["-L", os.path.join(os.path.dirname(a.patched), "qemu-bundle",
                                    "usr", "local", "share", "qemu")]
    q = run.start(src, env=dict(a.env), extra=extra)
    pid = run.proc.pid
    run.wait_status(q, ["running"])
    time.sleep(1.0)
    if deleted:
        os.unlink(src)
        run.say("deleted %s; /proc/%d/exe: %s", src, pid, run.exe())
    before = None
    if not running:
        q.cmd("stop")
        before = run.ram_sha256(q, "before")
        run.say("VM stopped; RAM sha256 %s", before)
    # The target lacks the source's pvpanic-pci: its incoming fails.
    target = [a.patched] + run.vm_args("tgt.qmp", pvpanic=False)
    run.cpr_exec(q, target)
    q.wait_closed()
    q = Qmp(run.path("src.qmp"))
    st = run.wait_status(q, ["running", "paused", "postmigrate"])
    run.say("after the hop: pid %d (was %d), exe %s, status %s",
            run.proc.pid, pid, run.exe(), st)
    check(run.alive() and run.proc.pid == pid, "same pid")
    if deleted:
        check(run.exe() == src + " (deleted)", "the deleted binary runs")
    else:
        check(os.path.realpath(run.exe()) == os.path.realpath(src),
              "the previous binary runs")
    # A rollback never rolls back again: nothing armed in the resumed QEMU.
    with open("/proc/%d/environ" % pid, "rb") as f:
        env = f.read().split(b"\0")
    armed = [v for v in env if v.startswith(b"QEMU_CPR_ROLLBACK=")]
    fds = [os.readlink("/proc/%d/fd/%s" % (pid, n))
           for n in os.listdir("/proc/%d/fd" % pid)]
    memfds = sorted(x for x in fds if x.startswith("/memfd:QEMU_CPR"))
    run.say("resumed QEMU: QEMU_CPR_ROLLBACK %s; its cpr memfds: %s",
            "set" if armed else "unset", ", ".join(memfds))
    check(not armed and not any("QEMU_CPR_ROLLBACK" in x for x in memfds),
          "no rollback armed in the resumed QEMU")
    info = q.cmd("query-cpr-rollback")
    run.say("query-cpr-rollback: %s", json.dumps(info))
    check(info["rolled-back"] and info["stage"] == "incoming",
          "query-cpr-rollback reports the failed incoming migration")
    if not running:
        check(st == "paused", "the VM is paused, as before the hop")
        after = run.ram_sha256(q, "after")
        run.say("RAM sha256 %s", after)
        check(before == after, "guest RAM unchanged")
        q.cmd("cont")
    st = run.wait_status(q, ["running"])
    run.say("status %s", st)
    if a.cprdump:
        # The state handed back stays open for cprdump until the next hop.
        out = subprocess.run([a.cprdump, "show", "--pid", str(pid)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True)
        run.say("cprdump show --pid %d: exit %d", pid, out.returncode)
        for line in out.stdout.splitlines():
            if "oll" in line or "ail" in line:
                run.say("  %s", line.strip())
        check(out.returncode == 0 and "rolled" in out.stdout.lower(),
              "cprdump shows the rollback record")
    for line in run.stderr_text().splitlines():
        if "cpr" in line or "savevm" in line or "load" in line:
            run.say("stderr: %s", line.strip())
    if again:
        # The resumed QEMU hops again, to a QEMU that matches: it runs
        # there, and that one was not rolled back.
        os.unlink(run.path("vm.state"))
        run.cpr_exec(q, [a.patched] + run.vm_args("tgt2.qmp"))
        q.wait_closed()
        q = Qmp(run.path("tgt2.qmp"))
        st = run.wait_status(q, ["running"])
        info = q.cmd("query-cpr-rollback")
        run.say("second hop: pid %d, exe %s, status %s, "
                "query-cpr-rollback: %s", run.proc.pid, run.exe(), st,
                json.dumps(info))
        check(run.proc.pid == pid and not info["rolled-back"],
              "the second hop is an ordinary one")
    q.close()


def sc_rollback(run):
    rollback(run, running=False)


def sc_rollback_running(run):
    rollback(run, running=True)


def sc_rollback_deleted(run):
    rollback(run, running=True, deleted=True)


def sc_rollback_then_hop(run):
    rollback(run, running=True, again=True)


class SkipTest(Exception):
    pass


SCENARIOS = {
    "to-stock": sc_to_stock,
    "to-stock-noiommufd": sc_to_stock_noiommufd,
    "wrapper": sc_wrapper,
    "transfer-to-stock": sc_transfer_to_stock,
    "refuse-missing": sc_refuse_missing,
    "refuse-strict": sc_refuse_strict,
    "rollback": sc_rollback,
    "rollback-running": sc_rollback_running,
    "rollback-deleted": sc_rollback_deleted,
    "rollback-then-hop": sc_rollback_then_hop,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patched", required=True)
    ap.add_argument("--stock", required=True)
    ap.add_argument("--stock-noiommufd")
    ap.add_argument("--env", action="append", default=[],
                    metavar="K=V", help="the sources' environment (else "
                    "empty), e.g. LD_LIBRARY_PATH for a QEMU built against "
                    "an installed libcprstate")
    ap.add_argument("--cprdump", help="also run cprdump show --pid on a "
                    "rolled-back QEMU")
    ap.add_argument("--work", required=True)
    ap.add_argument("scenario", nargs="*")
    a = ap.parse_args()
    a.patched = os.path.abspath(a.patched)
    a.stock = os.path.abspath(a.stock)
    if a.stock_noiommufd:
        a.stock_noiommufd = os.path.abspath(a.stock_noiommufd)
    if a.cprdump:
        a.cprdump = os.path.abspath(a.cprdump)
    a.work = os.path.abspath(a.work)
    a.env = dict(kv.split("=", 1) for kv in a.env)
    names = a.scenario or list(SCENARIOS)
    failed = 0
    for name in names:
        if name not in SCENARIOS:
            sys.exit("unknown scenario %s" % name)
        run = Run(a, name)
        print("%s:" % name, flush=True)
        try:
            SCENARIOS[name](run)
            print("%s: PASS" % name, flush=True)
        except SkipTest as e:
            print("%s: SKIP (%s)" % (name, e), flush=True)
        except Exception as e:
            failed += 1
            print("%s: FAIL: %s: %s" % (name, type(e).__name__, e),
                  flush=True)
            if run.proc:
                print("  stderr:\n    " +
                      run.stderr_text().replace("\n", "\n    "), flush=True)
        finally:
            if run.proc:
                run.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
