"""The checks the Python scripts make of the server: each counted, the first failure named
with what was seen and wanted, then the run stops (exit 1) with "N passed, 1 failed".
"""

import sys


class Judge:
    """Counts checks and stops at the first one that fails."""

    def __init__(self):
        self.passed = 0

    def check(self, name, ok, detail=""):
        if not ok:
            print(f"FAIL: {name}")
            if detail:
                print(f"  {detail}")
            print(f"{self.passed} passed, 1 failed")
            sys.exit(1)
        self.passed += 1

    def equal(self, name, actual, expected):
        self.check(name, actual == expected, f"got {actual!r}, wanted {expected!r}")

    def near(self, name, actual, expected, slack):
        self.check(name, abs(actual - expected) <= slack,
                   f"got {actual}, wanted {expected} within {slack}s")

    def status(self, name, response, expected):
        self.check(f"{name}: status {expected}", response.status_code == expected,
                   f"got {response.status_code}: {response.text[:500]}")

    def raises(self, name, error, action):
        try:
            action()
        except error:
            self.passed += 1
            return
        except Exception as other:  # noqa: BLE001 - the wrong failure is a failed check
            self.check(name, False, f"raised {type(other).__name__}: {other}")
        self.check(name, False, f"did not raise {error.__name__}")

    def summary(self):
        """The last line of a run that passed."""
        print(f"{self.passed} passed, 0 failed")
