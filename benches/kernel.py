"""Kernel benchmarks, side by side in one run (benches/README.md has the figures):

1. start-up to kernel_info_reply: smartnb against ipykernel;
2. the walkthrough's FHIR read: a `fetch` cell against the seed's Python `requests` cell on
   ipykernel, both against the same `smartnb serve`;
3. idle, 30 s after start with no Rust cell: resident memory of the whole process tree
   (the kernel and every child, the Rust worker included) and the CPU seconds that tree
   used in those 30 s; smartnb, ipykernel and evcxr_jupyter idle side by side;
4. start to the reply of the first Rust cell, when it is the first cell and when it follows
   five helper cells sent together with it (Run All): smartnb against evcxr_jupyter's start
   plus first cell; and a first cell keeping a `let` (whose type evcxr asks rust-analyzer
   for) against the same cell on evcxr_jupyter;
5. `smartnb run notebooks/smart-examples.ipynb`, the whole process.

    python benches/kernel.py [--quick] [--runs N] [--idle-runs N] [--evcxr PATH]

Every kernel is started the way Jupyter starts one: the client connects first, then the
kernel process is spawned with a fresh connection file. Runs of the two kernels being
compared alternate, and medians are reported with their ratio.

The client's sockets retry a refused connection every millisecond (ZeroMQ's default is
100 ms, for both kernels alike): otherwise start-up measures the client's back-off, since
its first connection attempts come before any kernel has bound its ports.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import zmq
from jupyter_client import BlockingKernelClient

SMARTNB = os.path.abspath("target/release/smartnb")
PATIENT = "smart-1288992"


def connection_file():
    """A connection file with five free loopback ports and a fresh key."""
    sockets = [socket.socket() for _ in range(5)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    names = ["shell_port", "iopub_port", "stdin_port", "control_port", "hb_port"]
    info = dict(zip(names, ports), ip="127.0.0.1", key=str(uuid.uuid4()), transport="tcp",
                signature_scheme="hmac-sha256", kernel_name="bench")
    fd, path = tempfile.mkstemp(suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(info, f)
    return path


class Kernel:
    """A kernel process and a connected client, started as Jupyter starts them."""

    def __init__(self, argv_for):
        self.path = connection_file()
        self.context = zmq.Context()
        self.context.setsockopt(zmq.RECONNECT_IVL, 1)
        self.client = BlockingKernelClient(context=self.context)
        self.client.load_connection_file(self.path)
        self.client.start_channels()
        self.started = time.perf_counter()
        self.process = subprocess.Popen(argv_for(self.path), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)

    def kernel_info(self):
        self.client.kernel_info()
        reply = self.client.get_shell_msg(timeout=60)
        assert reply["msg_type"] == "kernel_info_reply", reply
        return reply

    def ready(self):
        """Wait until iopub delivers too (a SUB socket misses what is sent before it joins)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.kernel_info()
            try:
                self.client.get_iopub_msg(timeout=0.5)
            except Exception:  # queue.Empty: not joined yet, ask again
                continue
            while True:  # drop the rest of that request's messages
                try:
                    self.client.get_iopub_msg(timeout=0.2)
                except Exception:
                    return self
        raise RuntimeError("the kernel's iopub never answered")

    def run(self, code, timeout=300):
        """Execute a cell; its reply and its stream text, after the kernel is idle again."""
        text = []

        def hook(msg):
            if msg["msg_type"] == "stream":
                text.append(msg["content"]["text"])
            elif msg["msg_type"] in ("display_data", "execute_result"):
                text.append(msg["content"]["data"].get("text/plain", ""))

        reply = self.client.execute_interactive(code, timeout=timeout, output_hook=hook)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"cell failed: {code!r}: {reply['content']}")
        return reply, "".join(text)

    def rss_kib(self, pid=None):
        with open(f"/proc/{pid or self.process.pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))

    def tree(self):
        """The kernel's pid and those of all its descendants, alive now."""
        parents = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                stat = proc_stat(int(entry))
                if stat:
                    parents[int(entry)] = int(stat[1])
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(child for child, parent in parents.items() if parent == pid)
        return found

    def tree_rss_kib(self):
        total = 0
        for pid in self.tree():
            try:
                total += self.rss_kib(pid)
            except (OSError, StopIteration):
                pass  # gone meanwhile, or a zombie without memory
        return total

    def tree_cpu_s(self):
        """CPU seconds (user + system) of the tree so far, with its reaped children's."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.tree():
            stat = proc_stat(pid)
            if stat:
                # utime, stime, cutime, cstime: fields 14-17 of /proc/PID/stat.
                total += sum(int(v) for v in stat[11:15])
        return total / ticks

    def close(self):
        try:
            self.client.shutdown()
            self.process.wait(timeout=20)
        except Exception:
            self.process.kill()
            self.process.wait()
        self.client.stop_channels()
        self.context.destroy(linger=0)
        os.remove(self.path)


def proc_stat(pid):
    """The fields of /proc/PID/stat after the command name (state first), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def smartnb_argv(path):
    return [SMARTNB, "kernel", "--connection-file", path]


def ipykernel_argv(path):
    return [sys.executable, "-m", "ipykernel_launcher", "-f", path]


def evcxr_argv(binary):
    return lambda path: [binary, "--control_file", path]


def median(values):
    return statistics.median(values)


def show(name, values, unit):
    return f"{name}: median {median(values):.1f} {unit} of {[round(v, 1) for v in values]}"


def startup(runs):
    """Spawn to kernel_info_reply, alternating the two kernels."""
    times = {"smartnb": [], "ipykernel": []}
    for _ in range(runs):
        for name, argv in (("smartnb", smartnb_argv), ("ipykernel", ipykernel_argv)):
            kernel = Kernel(argv)
            kernel.kernel_info()
            times[name].append((time.perf_counter() - kernel.started) * 1000)
            kernel.close()
    ratio = median(times["smartnb"]) / median(times["ipykernel"])
    print("1. start-up to kernel_info_reply")
    print("   " + show("smartnb", times["smartnb"], "ms"))
    print("   " + show("ipykernel", times["ipykernel"], "ms"))
    print(f"   ratio smartnb/ipykernel {ratio:.3f} (target at most 0.1)")
    return ratio


def fhir_read(runs, base):
    """The walkthrough's FHIR read, as a helper cell and as the seed's Python cell."""
    smartnb = Kernel(smartnb_argv).ready()
    smartnb.run(f"connect {base}")
    smartnb.run("register")
    smartnb.run(f"token --patient {PATIENT}")
    python = Kernel(ipykernel_argv).ready()
    python.run(
        "import requests\nfrom pprint import pprint\n"
        f"BASE = {base!r}\n"
        "client = requests.post(f'{BASE}/oauth/register', json={'client_name': 'bench', "
        "'redirect_uris': ['http://localhost:9001/authorized'], "
        "'scope': 'launch/patient patient/*.read offline_access'}).json()\n"
        "access_token = requests.post(f'{BASE}/oauth/debug/token', json={"
        "'client_id': client['client_id'], 'username': 'daniel-adams', "
        f"'patient_id': {PATIENT!r}}}).json()['access_token']\n")
    # The seed's cell, with the server's address as a variable.
    seed_cell = (
        "headers = {\n    'Authorization': f'Bearer {access_token}'\n}\n"
        f"response = requests.get(f'{{BASE}}/api/fhir/Patient/{PATIENT}', headers=headers)\n"
        "print(f'Response status code: {response.status_code}')\n"
        "pprint(response.json())\n")
    helper_cell = f"fetch Patient/{PATIENT}"
    times = {"smartnb": [], "ipykernel": []}
    for i in range(runs + 1):
        for name, kernel, cell in (("smartnb", smartnb, helper_cell),
                                   ("ipykernel", python, seed_cell)):
            start = time.perf_counter()
            _, text = kernel.run(cell)
            elapsed = (time.perf_counter() - start) * 1000
            assert "200" in text and PATIENT in text, f"{name} did not read the patient: {text[:300]}"
            if i > 0:  # the first run of each warms up (imports, connections)
                times[name].append(elapsed)
    smartnb.close()
    python.close()
    ratio = median(times["smartnb"]) / median(times["ipykernel"])
    print("2. the walkthrough's FHIR read, execute_request to idle")
    print("   " + show("smartnb `fetch`", times["smartnb"], "ms"))
    print("   " + show("ipykernel `requests` (seed cell)", times["ipykernel"], "ms"))
    print(f"   ratio smartnb/ipykernel {ratio:.3f} (target at most 0.5)")
    return ratio


def idle_tree(runs, evcxr):
    """Tree RSS and CPU seconds 30 s after spawn, the kernels idling side by side."""
    kernels = [("smartnb", smartnb_argv), ("ipykernel", ipykernel_argv)]
    if evcxr:
        kernels.append(("evcxr_jupyter", evcxr_argv(evcxr)))
    rss = {name: [] for name, _ in kernels}
    cpu = {name: [] for name, _ in kernels}
    procs = {name: [] for name, _ in kernels}
    for _ in range(runs):
        started = [(name, Kernel(argv)) for name, argv in kernels]
        for _, kernel in started:
            kernel.kernel_info()
        for name, kernel in started:
            time.sleep(max(0.0, kernel.started + 30 - time.perf_counter()))
            rss[name].append(kernel.tree_rss_kib() / 1024)
            cpu[name].append(kernel.tree_cpu_s())
            procs[name].append(len(kernel.tree()))
        for _, kernel in started:
            kernel.close()
    print("3. idle, 30 s after start, no Rust cell: the whole process tree")
    for name, _ in kernels:
        print(f"   {name}: " + show("tree RSS", rss[name], "MiB") + "; "
              + show("CPU", cpu[name], "s")
              + f"; processes {procs[name]}")
    ratio = median(rss["smartnb"]) / median(rss["ipykernel"])
    print(f"   tree RSS ratio smartnb/ipykernel {ratio:.2f} (target at most 1.2); "
          f"smartnb CPU median {median(cpu['smartnb']):.2f} s (target under 0.3)")
    return ratio


HELPER_CELLS = [
    "register",
    f"token --patient {PATIENT}",
    f"fetch Patient/{PATIENT}",
    f'fetch "Observation?patient={PATIENT}&code=http://loinc.org|8867-4"',
    "vars",
]


def run_all(kernel, cells, timeout=300):
    """Send every cell at once (as Run All does); seconds from spawn to the last reply."""
    ids = [kernel.client.execute(cell) for cell in cells]
    deadline = time.monotonic() + timeout
    replies = {}
    while ids[-1] not in replies:
        msg = kernel.client.get_shell_msg(timeout=max(1, deadline - time.monotonic()))
        replies[msg["parent_header"].get("msg_id")] = msg
    elapsed = time.perf_counter() - kernel.started
    for cell, msg_id in zip(cells, ids):
        status = replies[msg_id]["content"]["status"]
        if status != "ok":
            raise RuntimeError(f"cell failed: {cell!r}: {replies[msg_id]['content']}")
    return elapsed


def rust_first_cell(runs, evcxr):
    """Spawn to the reply of the first Rust cell: first, and after five helper cells."""
    code = 'println!("hi");'
    kept = "let n = vec![1, 2, 3].len();\nn"
    first = "evcxr_jupyter, Rust cell first"
    first_kept = "evcxr_jupyter, Rust cell first, keeping a let"
    # (name, argv, cells, the evcxr_jupyter case it is compared with)
    cases = [("smartnb, Rust cell first", smartnb_argv, [code], first),
             ("smartnb, Run All: five helper cells then the Rust cell", smartnb_argv,
              HELPER_CELLS + ['println!("{} {}", status, response["resourceType"]);'], first),
             ("smartnb, Run All: five helper cells then the first cell's println", smartnb_argv,
              HELPER_CELLS + [code], first),
             ("smartnb, Rust cell first, keeping a let", smartnb_argv, [kept], first_kept)]
    if evcxr:
        cases.append((first, evcxr_argv(evcxr), [code], None))
        cases.append((first_kept, evcxr_argv(evcxr), [kept], None))
    times = {name: [] for name, _, _, _ in cases}
    for _ in range(runs):
        for name, argv, cells, _ in cases:
            kernel = Kernel(argv)
            times[name].append(run_all(kernel, cells))
            kernel.close()
    print("4. spawn to the first Rust cell's execute_reply")
    for name, _, _, _ in cases:
        print("   " + show(name, times[name], "s"))
    if evcxr:
        for name, _, _, against in cases:
            if against:
                print(f"   ratio {name.split(', ', 1)[1]} / {against} "
                      f"{median(times[name]) / median(times[against]):.3f} (target at most 1)")
        return median(times[first])
    print("   (evcxr_jupyter not given: no comparison)")
    return None


def run_notebook(runs):
    """The whole `smartnb run notebooks/smart-examples.ipynb` process."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([SMARTNB, "run", "notebooks/smart-examples.ipynb"], check=True,
                       stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    print("5. smartnb run notebooks/smart-examples.ipynb, whole process")
    print("   " + show("wall clock", [t * 1000 for t in times], "ms") + " (target at most 1000)")
    return median(times)


def serve():
    """`smartnb serve` on a free port with the debug endpoints; its process and base URL."""
    process = subprocess.Popen([SMARTNB, "serve", "--port", "0", "--debug-endpoints", "--quiet"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    base = next(word for word in line.split() if word.startswith("http"))
    return process, base.rstrip("/")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run of each, to prove they work")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--rust-runs", type=int, default=5)
    parser.add_argument("--idle-runs", type=int, default=3,
                        help="rounds of the 30 s idle measurement (kernels idle side by side)")
    parser.add_argument("--evcxr", help="the evcxr_jupyter binary to compare Rust cells with")
    parser.add_argument("--only", default="1,2,3,4,5", help="which benchmarks, e.g. 1,4")
    args = parser.parse_args()
    only = {int(n) for n in args.only.split(",")}
    runs = 1 if args.quick else args.runs
    rust_runs = 1 if args.quick else args.rust_runs
    print(f"kernel benchmarks: {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}, "
          f"{runs} runs each ({rust_runs} for Rust cells)")
    if 1 in only:
        startup(runs)
    if 2 in only:
        server, base = serve()
        try:
            fhir_read(max(runs, 3) * 3, base)
        finally:
            server.terminate()
            server.wait()
    if 3 in only:
        idle_tree(1 if args.quick else args.idle_runs, args.evcxr)
    if 4 in only:
        rust_first_cell(rust_runs, args.evcxr)
    if 5 in only:
        run_notebook(runs)


if __name__ == "__main__":
    main()
