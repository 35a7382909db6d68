#!/usr/bin/env python3
"""Replicas with no sticky sessions: three `smartnb serve` processes on one PostgreSQL
database behind nginx's plain round robin, driven by complete SMART flows through the
portal's HTML forms (tests/replicas/flows.py), with replicas killed (SIGKILL) and restarted
in the middle.

Usage (what .ci/postgres_check.sh runs):
    check.py --bin SMARTNB --postgres URL --psql PSQL --nginx NGINX [--flows-bin FLOWS]
URL is a PostgreSQL server URL whose user may create databases; each scenario gets a fresh
database. FLOWS is the load generator (`cargo bench --bench flows`'s binary): given, it
also runs through the proxy, with and without a kill. Exits 1 at the first failed check.

What a kill may cost is exact: a request the dying replica had already read is cut off
(nginx answers 502 and must not resend a POST that may have taken effect). Every failure
is classified; anything else (a 4xx, a sign-in asked again, a code or session unknown) is
lost state and fails the run, as does more than one cut-off request per client per kill.
"""

import argparse
import os
import re
import subprocess
import sys
import threading
import time

import requests

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))

from cluster import Cluster  # noqa: E402
from flows import (PARTICIPANTS, REDIRECT, FlowError, Traced, authorize,  # noqa: E402
                   complete_flow, follow, register, sign_in, submit, tokens)
from html_forms import pkce  # noqa: E402
from html_forms import form  # noqa: E402
from judge import Judge  # noqa: E402

j = Judge()


def scenario(args, name, run, extra=()):
    """Run one scenario on a fresh cluster, then tear it down."""
    print(f"== {name}", flush=True)
    cluster = Cluster(args.bin, args.postgres, args.psql, args.nginx, args.replicas, extra)
    try:
        run(args, cluster)
    except FlowError as e:
        j.check(f"{name}: {e}", False, cluster.logs())
    finally:
        cluster.close()


def round_robin(args, cluster):
    """Sequential and concurrent flows: zero errors, every flow spread over replicas."""
    spread = []
    for i in range(12):
        user, patient = PARTICIPANTS[i % len(PARTICIPANTS)]
        spread.append(set(complete_flow(cluster.base, user, patient)))
    j.check("sequential flows each touched every replica",
            all(len(s) == len(cluster.replicas) for s in spread), str(spread))

    failures, served = [], []

    def client(k):
        for i in range(8):
            user, patient = PARTICIPANTS[(k + i) % len(PARTICIPANTS)]
            try:
                served.extend(complete_flow(cluster.base, user, patient))
            except FlowError as e:
                failures.append(str(e))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    j.equal("48 concurrent flows, failures", failures, [])
    counts = {r.address: served.count(r.address) for r in cluster.replicas}
    print(f"   requests per replica: {counts}")
    j.check("every replica served a share", min(counts.values()) > len(served) // 6, str(counts))


def replica_of(response):
    return response.headers.get("X-Smartnb-Replica", "")


def sessions_survive(args, cluster):
    """A browser session, a pending request and a participant on the consent page outlive
    the replica that made them."""
    base = cluster.base
    app = register(base, "survivor")

    # Signed in on one replica, which then dies: the browser is still signed in.
    browser = Traced()
    landed = sign_in(base, browser, "daniel-adams")
    j.check("signed in", not isinstance(landed, str) and form(landed, "/login") is None,
            getattr(landed, "text", "")[:300])
    signer = cluster.replica_at(browser.replicas[1])  # the POST /login
    signer.kill()
    code, verifier = authorize(base, browser, app, "daniel-adams", "smart-1288992",
                               signed_in=True)
    tokens(base, app, {"grant_type": "authorization_code", "code": code,
                       "redirect_uri": REDIRECT,
                       "code_verifier": verifier}, "exchange after the signer died")
    signer.start()
    j.check("the signer's session survived its death", True)

    # Waiting on the consent page while the replica that showed it dies and restarts.
    for victim_index in range(len(cluster.replicas)):
        waiting = Traced()
        query_app = register(base, f"waiting {victim_index}")
        verifier, challenge = pkce()
        page = follow(waiting, waiting.get(f"{base}/oauth/authorize", allow_redirects=False, params={
            "response_type": "code", "client_id": query_app["client_id"],
            "redirect_uri": REDIRECT, "scope": "launch/patient patient/*.read",
            "state": "s1", "aud": f"{base}/api/fhir", "code_challenge": challenge,
            "code_challenge_method": "S256"}), "authorize")
        page = submit(waiting, page, "/login", [("username", "joseph-ross"),
                                                ("password", "demo-password")], "sign-in")
        j.check("the consent page", form(page, "/oauth/consent") is not None,
                getattr(page, "text", "")[:300])
        shown_by = cluster.replica_at(replica_of(page))
        shown_by.kill()
        target = submit(waiting, page, "/oauth/consent", [("decision", "approve")], "consent")
        j.check("approved after the page's replica died", isinstance(target, str) and "code=" in target,
                getattr(target, "text", target)[:300] if not isinstance(target, str) else target)
        shown_by.start()

    # Every replica restarted in turn (a rolling restart): still signed in.
    for replica in cluster.replicas:
        replica.kill()
        replica.start()
    page = browser.get(f"{base}/apps", allow_redirects=False)
    j.status("/apps after a rolling restart", page, 200)
    j.check("still signed in after every replica restarted", "survivor" in page.text,
            page.text[:300])


def kill_under_load(args, cluster):
    """Flows from six clients while replicas are killed (SIGKILL) and restarted."""
    churn_under_load(cluster, graceful=False)


def stop_under_load(args, cluster):
    """Flows from six clients while replicas are stopped (SIGTERM, as a rolling restart
    does) and restarted: nothing is cut off at all."""
    churn_under_load(cluster, graceful=True)


def churn_under_load(cluster, graceful):
    """Flows from six clients while replicas are killed or stopped, then restarted."""
    stop = threading.Event()
    outcomes = {"ok": 0, "cut off": [], "lost": []}
    lock = threading.Lock()

    def client(k):
        i = k
        while not stop.is_set():
            user, patient = PARTICIPANTS[i % len(PARTICIPANTS)]
            i += 1
            try:
                complete_flow(cluster.base, user, patient)
                with lock:
                    outcomes["ok"] += 1
            except (FlowError, requests.ConnectionError) as e:
                text = str(e)
                cut = "status 502" in text or isinstance(e, requests.ConnectionError)
                with lock:
                    outcomes["cut off" if cut else "lost"].append(text)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    kills = 0
    for victim in cluster.replicas[:2] * 2:
        time.sleep(2.0)
        if graceful:
            victim.stop()
        else:
            victim.kill()
        kills += 1
        time.sleep(1.0)
        victim.start()
    time.sleep(2.0)
    stop.set()
    for t in threads:
        t.join()
    print(f"   {outcomes['ok']} flows completed, {len(outcomes['cut off'])} cut off by "
          f"{kills} kills, {len(outcomes['lost'])} lost state")
    for text in outcomes["cut off"]:
        print(f"   cut off: {text[:200]}")
    j.equal("flows that lost state across kills", outcomes["lost"], [])
    allowed = 0 if graceful else kills * len(threads)
    j.check(f"at most {allowed} requests cut off ({'stopped' if graceful else 'killed'} {kills} times)",
            len(outcomes["cut off"]) <= allowed, str(outcomes["cut off"]))
    j.check("flows went on", outcomes["ok"] >= 20, str(outcomes["ok"]))


PAUSED = "Too many failed sign-ins for this user"


def failure_counting(args, cluster):
    """Five wrong passwords pause the name, whichever replicas they reached."""
    base = cluster.base
    reached = set()
    for attempt in range(4):
        browser = Traced()
        page = sign_in(base, browser, "dr-carter", password=f"wrong-{attempt}",
                       refused_ok=True)
        j.check(f"wrong password {attempt + 1} is refused", not isinstance(page, str)
                and form(page, "/login") is not None and PAUSED not in page.text)
        reached.add(browser.replicas[-1])
    j.check("the wrong passwords reached more than one replica", len(reached) > 1, str(reached))
    # Still allowed after four: the right password signs in (and clears the count).
    page = sign_in(base, Traced(), "dr-carter")
    j.check("four failures do not pause", form(page, "/login") is None,
            getattr(page, "text", "")[:300])

    # Concurrent wrong guesses across replicas are all counted.
    results = []

    def guess(n):
        results.append(sign_in(base, Traced(), "joseph-ross", password=f"guess-{n}",
                               refused_ok=True))

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for replica in cluster.replicas:
        browser = requests.Session()
        page = replica.get("/login")
        found = form(page, "/login")
        body = [(k, v) for k, v in found["fields"] if k not in ("username", "password")]
        body += [("username", "joseph-ross"), ("password", "demo-password")]
        answer = browser.post(f"http://{replica.address}/login", data=body,
                              headers={"Host": base.split("//")[1]},
                              cookies=page.cookies, allow_redirects=False)
        j.check(f"the right password is paused on {replica.address} after five concurrent "
                f"wrong ones", PAUSED in answer.text, f"{answer.status_code}: {answer.text[:300]}")


def load_generator(args, cluster):
    """The flow load generator through the proxy: zero errors; then across a kill."""
    def run(seconds, during=None):
        command = [args.flows_bin, "--url", cluster.base, "--clients", "12",
                   "--seconds", str(seconds), "--people", "all"]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        if during:
            during()
        out, _ = process.communicate(timeout=300)
        print("   " + out.strip().replace("\n", "\n   "))
        errors = re.search(r"(\d+) errors, (\d+) of them 5xx", out)
        j.check("the load generator reported", errors is not None, out)
        return int(errors.group(1)), int(errors.group(2)), out

    errors, _, out = run(6)
    j.equal("load generator errors through the proxy", errors, 0)

    def kill_one():
        time.sleep(3.0)
        cluster.replicas[1].kill()
        time.sleep(1.0)
        cluster.replicas[1].start()

    errors, fives, out = run(8, kill_one)
    j.check("across a kill, only requests cut off (502s), at most one per client",
            errors == fives and errors <= 12, out)
    print(f"   {errors} requests cut off by the kill")


# Short lifetimes and a sweep every second, for tables_track_live_state.
SHORT_LIVES = ["--code-lifetime", "1", "--access-lifetime", "3", "--session-lifetime", "3",
               "--sweep-every", "1"]


def tables_track_live_state(args, cluster):
    """After a burst of flows and the sweep, no table holds a row per flow: the tables are
    as large as what is still live (sessions, pending requests, codes, tokens), not as the
    traffic was."""
    command = [args.flows_bin, "--url", cluster.base, "--clients", "12", "--seconds", "6",
               "--people", "all"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=300).stdout
    flows = int(re.search(r"whole run: (\d+) flows", out).group(1))
    during = cluster.table_rows()
    time.sleep(14)  # past every short lifetime (codes are kept ten lifetimes), and sweeps
    after = cluster.table_rows()
    print(f"   {flows} flows; rows right after the load: {during}")
    print(f"   rows after the sweep: {after}")
    j.check("the load made enough flows to tell", flows >= 40, out)
    for table, rows in after.items():
        j.check(f"table {table} holds {rows} rows after {flows} flows and the sweep",
                rows < max(20, flows // 4), str(after))


def key_rotation(args, cluster):
    """Rotating the signing key with replicas running: every replica publishes both keys."""
    first = requests.get(f"{cluster.base}/.well-known/jwks.json", timeout=30).json()
    j.equal("one signing key to start with", len(first["keys"]), 1)
    rotating = cluster.replicas[0]
    rotating.kill()
    rotating.start(["--rotate-signing-key"])
    for replica in cluster.replicas:
        keys = replica.get("/.well-known/jwks.json", timeout=30).json()["keys"]
        j.equal(f"{replica.address} publishes the old and the new key", len(keys), 2)
        j.check("the old key is still published",
                first["keys"][0]["kid"] in [k["kid"] for k in keys])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", required=True)
    parser.add_argument("--postgres", required=True)
    parser.add_argument("--psql", default="psql")
    parser.add_argument("--nginx", default="nginx")
    parser.add_argument("--flows-bin")
    parser.add_argument("--only", help="run the scenarios whose name contains this")
    parser.add_argument("--replicas", type=int, default=3, help="replicas per scenario (3)")
    args = parser.parse_args()
    scenarios = [
        ("round-robin flows", round_robin),
        ("sessions and pending requests survive their replica", sessions_survive),
        ("flows go on while replicas are killed", kill_under_load),
        ("flows go on while replicas are stopped and restarted", stop_under_load),
        ("failure counting across replicas", failure_counting),
        ("key rotation with replicas running", key_rotation),
    ]
    if args.flows_bin:
        scenarios.append(("the load generator through the proxy", load_generator))
        scenarios.append(("tables track live state, not traffic", tables_track_live_state,
                          SHORT_LIVES))
    for name, run, *extra in scenarios:
        if args.only is None or args.only in name:
            scenario(args, name, run, *extra)
    j.summary()


if __name__ == "__main__":
    main()
