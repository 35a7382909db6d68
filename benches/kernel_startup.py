"""Kernel start-up: time from spawning `smartnb kernel` to its kernel_info_reply, median
of 5, and the idle VmRSS of the kernel process.

    target/ci-venv-kernel/bin/python benches/kernel_startup.py   (after .ci/kernel_test.sh)

Two clocks: "bound" connects the client once the shell port accepts (the kernel's own
start-up); "jupyter" connects first, as jupyter_client does when it launches a kernel, so
libzmq's 100 ms reconnect interval is included.
"""

import json
import os
import socket
import statistics
import subprocess
import tempfile
import time
import uuid

from jupyter_client import BlockingKernelClient

BINARY = "target/release/smartnb"


def connection_file():
    sockets = [socket.socket() for _ in range(5)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    names = ["shell_port", "iopub_port", "stdin_port", "control_port", "hb_port"]
    info = dict(zip(names, ports), ip="127.0.0.1", key=str(uuid.uuid4()), transport="tcp",
                signature_scheme="hmac-sha256", kernel_name="smartnb")
    fd, path = tempfile.mkstemp(suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(info, f)
    return path, info


def once(connect_first):
    path, info = connection_file()
    client = BlockingKernelClient()
    client.load_connection_file(path)
    if connect_first:
        client.start_channels()
    start = time.perf_counter()
    kernel = subprocess.Popen([BINARY, "kernel", "--connection-file", path],
                              stdout=subprocess.DEVNULL)
    if not connect_first:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", info["shell_port"])).close()
                break
            except OSError:
                time.sleep(0.001)
        client.start_channels()
    client.kernel_info()
    client.get_shell_msg(timeout=10)
    elapsed = time.perf_counter() - start
    time.sleep(1.0)  # let it settle before reading its memory
    with open(f"/proc/{kernel.pid}/status") as status:
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
    client.shutdown()
    kernel.wait(timeout=10)
    client.stop_channels()
    os.remove(path)
    return elapsed * 1000, rss


for mode, connect_first in (("bound", False), ("jupyter", True)):
    runs = [once(connect_first) for _ in range(5)]
    ms = [round(r[0], 1) for r in runs]
    print(f"{mode}: to kernel_info_reply {ms} ms, median {statistics.median(ms)} ms; "
          f"idle VmRSS median {statistics.median(r[1] for r in runs)} kB")
