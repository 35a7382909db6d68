"""Replicas of `smartnb serve` on one PostgreSQL database, behind nginx's round robin.

`Cluster` creates a fresh database, starts the replicas on free loopback ports (each told
the proxy's address as its --public-url) and an nginx that spreads requests over them with
no stickiness, and tears everything down on `close`. Every answer through the proxy
carries `X-Smartnb-Replica: 127.0.0.1:PORT`, the replica nginx passed it to, so a check can
see which replica served each request.
"""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from urllib.parse import urlparse

import requests


def free_port():
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def create_database(server_url, psql):
    """A new empty database on the server of `server_url`; its URL."""
    name = f"replicas_{secrets.token_hex(6)}"
    subprocess.run([psql, server_url, "-q", "-c", f"CREATE DATABASE {name}"], check=True)
    parsed = urlparse(server_url)
    return parsed._replace(path=f"/{name}").geturl()


class Replica:
    """One `smartnb serve` process on a fixed port, started and killed at will."""

    def __init__(self, binary, state, port, public_url, log_dir, extra=()):
        """A replica of `binary` on `port` (`state` None: in memory)."""
        self.binary, self.state, self.port = binary, state, port
        self.public_url, self.extra = public_url, list(extra)
        self.log_path = os.path.join(log_dir, f"replica-{port}.log")
        self.process = None

    @property
    def address(self):
        """`127.0.0.1:PORT`, as nginx names this upstream."""
        return f"127.0.0.1:{self.port}"

    def start(self, extra=()):
        """Start and wait until it prints its URL (it listens from then on)."""
        log = open(self.log_path, "a")
        self.process = subprocess.Popen(
            [self.binary, "serve", "--host", "127.0.0.1", "--port", str(self.port),
             *(["--state", self.state] if self.state else []),
             "--public-url", self.public_url, *self.extra, *extra],
            stdout=subprocess.PIPE, stderr=log, text=True)
        line = self.process.stdout.readline()
        if not line.startswith("http"):
            raise RuntimeError(f"replica on {self.port} did not start: {line!r}; see {self.log_path}")
        # Drain the rest of stdout so the pipe never fills.
        self.drain = subprocess.Popen(["cat"], stdin=self.process.stdout, stdout=subprocess.DEVNULL)

    def kill(self):
        """SIGKILL, as a crash or an OOM kill would end it."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self):
        """End it if it runs."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def get(self, path, **kwargs):
        """A GET straight to this replica, around the proxy."""
        return requests.get(f"http://{self.address}{path}",
                            headers={"Host": urlparse(self.public_url).netloc}, **kwargs)


NGINX_CONF = """
{user}
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream smartnb {{
{servers}
        keepalive 32;
        # Shorter than a stopping replica's drain (serve --drain, 5 s): nginx closes its
        # idle connections to a draining replica itself, so none is closed under it.
        keepalive_timeout 2s;
    }}
    server {{
        listen 127.0.0.1:{port};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_connect_timeout 2s;
        add_header X-Smartnb-Replica $upstream_addr always;
        location / {{
            proxy_pass http://smartnb;
            proxy_next_upstream error timeout;
        }}
        # A sign-in or a choice on the picker cut off by a dying replica may be sent
        # again (deploy/README.md).
        location ~ ^/(login|oauth/consent/patient|oauth/consent/encounter)$ {{
            proxy_pass http://smartnb;
            proxy_next_upstream error timeout non_idempotent;
        }}
    }}
}}
"""


class Proxy:
    """nginx on a loopback port, round robin over the replicas, no stickiness."""

    def __init__(self, nginx, port, upstreams, work):
        self.dir = os.path.join(work, "nginx")
        os.makedirs(self.dir, exist_ok=True)
        servers = "\n".join(f"        server {a} max_fails=1 fail_timeout=2s;" for a in upstreams)
        user = "user root;" if os.geteuid() == 0 else ""
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(user=user, dir=self.dir, servers=servers, port=port))
        self.process = subprocess.Popen([nginx, "-c", conf, "-p", self.dir],
                                        stderr=open(os.path.join(self.dir, "stderr.log"), "w"))
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 30
        while True:
            try:
                requests.get(f"{self.base}/.well-known/smart-configuration", timeout=5)
                return
            except requests.ConnectionError:
                if self.process.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"nginx did not start; see {self.dir}")
                time.sleep(0.1)

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


class Cluster:
    """`count` replicas on a fresh database behind one nginx."""

    def __init__(self, binary, server_url, psql, nginx, count=3, extra=()):
        self.work = tempfile.mkdtemp(prefix="smartnb-replicas-")
        self.psql = psql
        self.database = create_database(server_url, psql)
        proxy_port = free_port()
        self.base = f"http://127.0.0.1:{proxy_port}"
        self.replicas = [Replica(binary, self.database, free_port(), self.base, self.work, extra)
                         for _ in range(count)]
        # The first migrates the new database; the others then start together.
        self.replicas[0].start()
        for replica in self.replicas[1:]:
            replica.start()
        self.proxy = Proxy(nginx, proxy_port, [r.address for r in self.replicas], self.work)

    def replica_at(self, address):
        """The replica nginx named in X-Smartnb-Replica (the last one it tried)."""
        last = address.split(",")[-1].strip()
        return next(r for r in self.replicas if r.address == last)

    def table_rows(self):
        """Rows in every table of the database, by table name."""
        names = subprocess.run(
            [self.psql, self.database, "-At", "-c",
             "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"],
            check=True, capture_output=True, text=True).stdout.split()
        counts = {}
        for name in names:
            out = subprocess.run([self.psql, self.database, "-At", "-c",
                                  f'SELECT count(*) FROM "{name}"'],
                                 check=True, capture_output=True, text=True).stdout
            counts[name] = int(out.strip())
        return counts

    def logs(self):
        """Every replica's stderr, for a failure's report."""
        out = []
        for r in self.replicas:
            with open(r.log_path) as f:
                out.append(f"--- {r.address}\n{f.read()[-3000:]}")
        return "\n".join(out)

    def close(self):
        self.proxy.stop()
        for replica in self.replicas:
            replica.stop()
        shutil.rmtree(self.work, ignore_errors=True)
