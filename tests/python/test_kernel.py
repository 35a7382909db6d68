"""The official jupyter_kernel_test suite against the installed smartnb kernel, plus the
checks the suite skips for this kernel (history, interrupt) done through jupyter_client."""

import socket
import time
import unittest

import jupyter_kernel_test as jkt
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

    # `vars` shows a table: display_data with text/plain, application/json and text/html.
    code_display_data = [
        {"code": "set a 1\nvars", "mime": "text/plain"},
        {"code": "set a 1\nvars", "mime": "application/json"},
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
        # The suite's own requests time out after 15 s; let the Rust evaluator finish
        # starting first (it starts in the background with the kernel).
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
        tables = [m for m in outputs if m["msg_type"] == "display_data"]
        self.assertEqual(tables[0]["content"]["data"]["application/json"]["kept"], "yes")


if __name__ == "__main__":
    unittest.main()
