"""The official jupyter_kernel_test suite against the installed smartnb kernel, plus the
checks the suite skips for this kernel (history, interrupt, stdin, stop-on-error) done
through jupyter_client."""

import os
import socket
import time
import unittest

import jupyter_kernel_test as jkt
from jupyter_client.manager import start_new_kernel
from jupyter_kernel_test.msgspec_v5 import validate_message

TIMEOUT = 120


class SmartnbKernelTests(jkt.KernelTests):
    kernel_name = "smartnb"
    language_name = "rust"
    file_extension = ".rs"

    # Rust cells, evaluated by evcxr (the first one waits for the evaluator to start).
    code_hello_world = 'println!("hello, world");'
    code_stderr = 'eprintln!("oops");'
    code_execute_result = [
        {"code": "6 * 7", "result": "42"},
        {"code": 'format!("{}-{}", "a", 1)', "result": '"a-1"'},
    ]

    # `vars` shows a table (text/html and text/plain) and its JSON (application/json and
    # text/plain) as two display_data; `keys` shows one JSON document.
    code_display_data = [
        {"code": "set a 1\nvars", "mime": "text/plain"},
        {"code": "keys", "mime": "application/json"},
    ]

    code_generate_error = "%regster"

    completion_samples = [
        {"text": "regi", "matches": {"register"}},
        {"text": "fetch Obs", "matches": {"Observation"}},
        {"text": "token --user j", "matches": {"joseph-ross"}},
    ]

    complete_code_samples = ["vars", "set a 1", "register --name 'My App'"]
    incomplete_code_samples = ["set a 'open", "register \\"]

    code_inspect_sample = "fetch"

    code_history_pattern = "6*"
    supported_history_operations = ("tail", "range", "search")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The suite's own requests time out after 15 s; this first Rust cell starts the Rust
        # evaluator (it starts only when Rust is needed) and waits for it.
        cls.kc.execute_interactive("let _warm = 0;", timeout=300)

    def run_cells(self, *cells):
        for cell in cells:
            reply, _ = self.execute_helper(cell)
            self.assertEqual(reply["content"]["status"], "ok", reply["content"])

    def history(self, **args):
        self.flush_channels()
        msg_id = self.kc.history(raw=True, **args)
        reply = self.get_non_kernel_info_reply(timeout=TIMEOUT)
        validate_message(reply, "history_reply", msg_id)
        self.assertEqual(reply["content"]["status"], "ok")
        return reply["content"]["history"]

    def test_history_of_helper_cells(self):
        self.flush_channels()
        self.run_cells("set hx 1", "unset hx", "set hx 2")
        tail = self.history(hist_access_type="tail", output=False, n=3)
        self.assertEqual([h[2] for h in tail], ["set hx 1", "unset hx", "set hx 2"])
        session, start = tail[0][0], tail[0][1]
        with_output = self.history(hist_access_type="tail", output=True, n=1)
        self.assertEqual(len(with_output[0][2]), 2)
        one = self.history(
            hist_access_type="range", output=False, session=session, start=start, stop=start + 1
        )
        self.assertEqual([(h[0], h[1], h[2]) for h in one], [(session, start, "set hx 1")])
        # jupyter_client sends a search without `unique` and `n`.
        found = self.history(hist_access_type="search", output=False, pattern="set hx*")
        self.assertGreaterEqual(len(found), 2)
        unique = self.history(
            hist_access_type="search", output=False, pattern="unset h?", unique=True
        )
        self.assertEqual([h[2] for h in unique], ["unset hx"])
        last = self.history(hist_access_type="search", output=False, pattern="*", n=2)
        self.assertEqual([h[2] for h in last], ["unset hx", "set hx 2"])

    def test_interrupt_keeps_variables(self):
        self.flush_channels()
        self.run_cells("set kept yes")
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen()
            port = silent.getsockname()[1]
            msg_id = self.kc.execute(f"http GET http://127.0.0.1:{port}/")
            # Wait until the cell runs (its execute_input), then interrupt by message.
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                msg = self.kc.get_iopub_msg(timeout=TIMEOUT)
                if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "execute_input":
                    break
            self.km.interrupt_kernel()
            reply = self.get_non_kernel_info_reply(timeout=TIMEOUT)
            self.assertEqual(reply["parent_header"]["msg_id"], msg_id)
            self.assertEqual(reply["content"]["status"], "error")
            self.assertEqual(reply["content"]["ename"], "Interrupted")
        self.flush_channels()
        reply, outputs = self.execute_helper("vars")
        self.assertEqual(reply["content"]["status"], "ok")
        self.assertEqual(vars_json(outputs)["kept"], "yes")

    def test_input_reply_from_jupyter_client_input(self):
        # `jupyter console` answers with BlockingKernelClient.input(): no parent header.
        self.flush_channels()
        self.run_cells("register")
        msg_id = self.kc.execute("authorize --as daniel-adams\nexchange", allow_stdin=True)
        request = self.kc.get_stdin_msg(timeout=TIMEOUT)
        self.assertEqual(request["msg_type"], "input_request")
        self.assertTrue(request["content"]["password"])
        self.kc.input("demo-password")
        reply = self.get_non_kernel_info_reply(timeout=TIMEOUT)
        self.assertEqual(reply["parent_header"]["msg_id"], msg_id)
        self.assertEqual(reply["content"]["status"], "ok", reply["content"])
        wait_for_idle(self.kc, msg_id)
        _, outputs = self.execute_helper("vars")
        self.assertIn("access_token", vars_json(outputs))

    def test_introspect_table_is_its_own_output(self):
        self.flush_channels()
        reply, outputs = self.execute_helper("register\ntoken\nintrospect")
        self.assertEqual(reply["content"]["status"], "ok", reply["content"])
        displays = [m["content"]["data"] for m in outputs if m["msg_type"] == "display_data"]
        tables = [i for i, d in enumerate(displays) if ">active<" in d.get("text/html", "")]
        self.assertEqual(len(tables), 1, displays)
        table = displays[tables[0]]
        # With application/json beside it, JupyterLab and Notebook 7 show the JSON instead.
        self.assertNotIn("application/json", table)
        self.assertIn("active", table["text/plain"])
        self.assertIs(displays[tables[0] + 1]["application/json"]["active"], True)


class StopOnErrorTests(unittest.TestCase):
    """A kernel of its own, whose stop-on-error window outlasts the test: a late cell
    arrives inside it however slow the machine."""

    @classmethod
    def setUpClass(cls):
        env = dict(os.environ, SMARTNB_STOP_ON_ERROR_WINDOW_MS="600000")
        cls.km, cls.kc = start_new_kernel(kernel_name="smartnb", env=env, startup_timeout=TIMEOUT)

    @classmethod
    def tearDownClass(cls):
        cls.kc.stop_channels()
        cls.km.shutdown_kernel()

    def reply_to(self, msg_id):
        while True:
            reply = self.kc.get_shell_msg(timeout=TIMEOUT)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply

    def test_a_late_cell_of_a_failed_run_is_aborted_unnumbered(self):
        # Run All makes every cell at once; this one reaches the kernel after the error.
        late = self.kc.session.msg(
            "execute_request",
            {"code": "set late 1", "silent": False, "store_history": True,
             "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        )
        failed = self.kc.execute("%regster")
        reply = self.reply_to(failed)
        self.assertEqual(reply["content"]["status"], "error")
        self.assertEqual(reply["content"]["execution_count"], 1)
        self.kc.shell_channel.send(late)
        late_id = late["header"]["msg_id"]
        reply = self.reply_to(late_id)
        self.assertEqual(reply["content"]["status"], "aborted")
        # ipykernel's aborted reply: no count, so the cell's prompt stays empty.
        self.assertNotIn("execution_count", reply["content"])
        published = wait_for_idle(self.kc, late_id)
        self.assertEqual([m["msg_type"] for m in published], ["status", "status"])
        # A cell made after the error reply runs, numbered after the failed one.
        reply = self.kc.execute_interactive("set fresh 1", timeout=TIMEOUT)
        self.assertEqual(reply["content"]["status"], "ok", reply["content"])
        self.assertEqual(reply["content"]["execution_count"], 2)


def wait_for_idle(kc, msg_id):
    """The iopub messages of request msg_id, up to and including its idle."""
    seen = []
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=TIMEOUT)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        seen.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return seen
    raise AssertionError(f"no idle for {msg_id}")


def vars_json(outputs):
    """The JSON display_data of a `vars` cell (it follows the table)."""
    for msg in outputs:
        data = msg["content"].get("data", {})
        if msg["msg_type"] == "display_data" and "application/json" in data:
            return data["application/json"]
    raise AssertionError(f"no JSON output in {outputs}")


if __name__ == "__main__":
    unittest.main()
