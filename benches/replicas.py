#!/usr/bin/env python3
"""Authorization-code flows per second and CPU per flow with each kind of state, one
replica and two behind nginx's round robin, measured side by side in one run.

    benches/replicas.py --bin SMARTNB --flows-bin FLOWS --postgres URL --psql PSQL \\
        --nginx NGINX [--baseline OLD_SMARTNB] [--rounds 3] [--seconds 8] [--clients 32]

Configurations, interleaved round by round: memory (1 replica, direct), SQLite (1, direct),
PostgreSQL (1, direct), PostgreSQL (1, through nginx: the proxy's own cost), PostgreSQL
(2 through nginx). Each round starts fresh processes (and a fresh database) and runs the
flow load generator (benches/flows, `--people joseph` as benches/server.sh runs it). CPU is read from /proc before and
after the measured window for every smartnb replica, every PostgreSQL server process and
nginx, and divided by the flows completed: where a flow's time goes. Prints one line per
configuration with medians. Exits 1 if any run had an error or a 5xx.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "replicas"))

from cluster import Proxy, Replica, create_database, free_port  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    """User + system CPU seconds of these processes so far."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except FileNotFoundError:
            pass
    return total / TICKS


def pids_of(user=None, name=None):
    """Pids of processes run by `user` or whose command is `name`."""
    args = ["pgrep"] + (["-u", user] if user else []) + ([ "-x", name] if name else [])
    out = subprocess.run(args, capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def measure(args, binary, kind, count, proxied, work):
    """One run of the generator against a fresh deployment; a dict of figures."""
    state = {"memory": None, "sqlite": os.path.join(work, f"s{time.time_ns()}.db"),
             "postgres": None}[kind]
    if kind == "postgres":
        state = create_database(args.postgres, args.psql)
    front = free_port() if proxied else None
    ports = [free_port() for _ in range(count)]
    public = f"http://127.0.0.1:{front or ports[0]}"
    replicas = [Replica(binary, state, p, public, work, ["--quiet"]) for p in ports]
    proxy = None
    try:
        for r in replicas:
            r.start()
        if proxied:
            proxy = Proxy(args.nginx, front, [r.address for r in replicas], work)
        watched = {"smartnb": [r.process.pid for r in replicas],
                   "postgres": pids_of(user="postgres") if kind == "postgres" else [],
                   "nginx": pids_of(name="nginx") if proxied else []}
        generator = subprocess.Popen(
            [args.flows_bin, "--url", public, "--clients", str(args.clients),
             "--seconds", str(args.seconds), "--warmup", "1", "--people", args.people,
             "--pid", str(replicas[0].process.pid)],
            stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)  # the warm-up
        before = {k: cpu_seconds(v) for k, v in watched.items()}
        out, _ = generator.communicate(timeout=600)
        after = {k: cpu_seconds(v) for k, v in watched.items()}
        result = re.search(r"RESULT .* completed=(\d+) .* errors=(\d+) status_5xx=(\d+)", out)
        rate = float(re.search(r" rate=([0-9.]+)", out).group(1))
        completed, errors, fives = (int(g) for g in result.groups())
        figures = {"rate": rate, "errors": errors + fives}
        for line in out.splitlines():
            if line.strip().startswith("error:"):
                print(f"   {kind} x{count}: {line.strip()[:300]}", flush=True)
        for k in watched:
            figures[k] = (after[k] - before[k]) * 1e6 / max(completed, 1)
        gen = re.search(r"generator (\d+) µs", out)
        figures["generator"] = float(gen.group(1)) if gen else float("nan")
        return figures
    finally:
        if proxy:
            proxy.stop()
        for r in replicas:
            r.stop()


CONFIGS = [
    ("memory, 1 replica", "memory", 1, False),
    ("SQLite, 1 replica", "sqlite", 1, False),
    ("PostgreSQL, 1 replica", "postgres", 1, False),
    ("PostgreSQL, 1 replica via nginx", "postgres", 1, True),
    ("PostgreSQL, 2 replicas via nginx", "postgres", 2, True),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", required=True)
    parser.add_argument("--flows-bin", required=True)
    parser.add_argument("--postgres", required=True)
    parser.add_argument("--psql", default="psql")
    parser.add_argument("--nginx", default="nginx")
    parser.add_argument("--baseline", help="another smartnb binary to measure beside --bin")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--people", default="joseph", help="the generator's --people")
    parser.add_argument("--only", help="measure only the configurations whose name has this")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="smartnb-replicas-bench-")
    configs = [(name, args.bin, kind, count, proxied) for name, kind, count, proxied in CONFIGS
               if args.only is None or args.only in name]
    if args.baseline:
        # The baseline binary beside this one, one replica, each kind of state it keeps.
        configs = [(f"baseline: {name}", args.baseline, kind, count, proxied)
                   for name, kind, count, proxied in CONFIGS if count == 1 and not proxied
                   ] + configs
    runs = {name: [] for name, *_ in configs}
    for round_ in range(args.rounds):
        for name, binary, kind, count, proxied in configs:
            figures = measure(args, binary, kind, count, proxied, work)
            runs[name].append(figures)
            print(f"round {round_ + 1}: {name}: {figures['rate']:.0f} flows/s, "
                  f"smartnb {figures['smartnb']:.0f} µs, postgres {figures['postgres']:.0f} µs, "
                  f"nginx {figures['nginx']:.0f} µs per flow, errors {figures['errors']}",
                  flush=True)
    print("\nmedians: configuration | flows/s | CPU per flow: smartnb (all replicas), "
          "PostgreSQL, nginx, generator")
    failed = False
    for name, *_ in configs:
        median = {k: statistics.median(r[k] for r in runs[name])
                  for k in ("rate", "smartnb", "postgres", "nginx", "generator")}
        errors = sum(r["errors"] for r in runs[name])
        failed |= errors > 0
        print(f"{name} | {median['rate']:.0f} | {median['smartnb']:.0f} µs, "
              f"{median['postgres']:.0f} µs, {median['nginx']:.0f} µs, "
              f"{median['generator']:.0f} µs | errors {errors}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
