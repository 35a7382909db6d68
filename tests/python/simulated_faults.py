#!/usr/bin/env python3
"""Be the apps a developer tests against simulated faults: set every fault through
POST /oauth/debug/simulate and check exactly what a client sees, with requests (status,
OAuth JSON or OperationOutcome, WWW-Authenticate, Retry-After, the Smartnb-Simulated header
and its remaining count, the authorize redirect's error and state) and with fhirclient (its
code exchange, refresh and reads raising the error of each fault, and recovering from an
expired token by itself); `times` counting, times=0 until cleared, the list, clearing, the
order faults are consumed in, the endpoint's refusals, faults carried by an EHR launch,
`slow` not holding up other requests, and a second client never affected.

Usage: simulated_faults.py BASE_URL        e.g. simulated_faults.py http://localhost:9000
Exits 1 at the first failed check, saying which and why; ends with "N passed, 0 failed".
"""

import re
import secrets
import sys
import threading
from urllib.parse import parse_qs, parse_qsl, urlparse

import requests

import html_forms
from backend_services import Client as Asserting
from backend_services import Key
from judge import Judge

REDIRECT = "http://localhost:9001/authorized"
SCOPE = "launch launch/patient patient/*.read offline_access"
USER, PASSWORD, PATIENT = "daniel-adams", "demo-password", "smart-1288992"
HEADER = "Smartnb-Simulated"

AUTHORIZE_PAGES = ["authorize_invalid_client", "authorize_invalid_redirect_uri"]
AUTHORIZE_REDIRECTS = {
    "authorize_invalid_scope": "invalid_scope",
    "authorize_access_denied": "access_denied",
    "authorize_server_error": "server_error",
}
TOKEN_FAULTS = ["token_invalid_client", "token_invalid_grant", "token_expired_refresh",
                "token_invalid_scope", "token_replayed_jti", "token_unavailable"]
FHIR_FAULTS = ["fhir_expired_token", "fhir_invalid_token", "fhir_insufficient_scope",
               "fhir_server_error", "fhir_throttled"]
FAULTS = AUTHORIZE_PAGES + list(AUTHORIZE_REDIRECTS) + TOKEN_FAULTS + FHIR_FAULTS + ["slow"]


def json_of(response):
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def challenge(value):
    """The scheme and parameters of a WWW-Authenticate value."""
    scheme, _, rest = (value or "").partition(" ")
    return scheme, dict(re.findall(r'([a-z_]+)="([^"]*)"', rest))


def site(fault):
    """Where a fault answers: its own place (slow: where `at` says)."""
    return next((place for place in ("authorize", "token", "fhir")
                 if fault.startswith(f"{place}_")), None)


def entry(fault, times=1, at=None, delay_ms=None, remaining="as set"):
    """A fault as the endpoint lists it: `at` is a fixed fault's place, or slow's `at`."""
    left = (None if times == 0 else times) if remaining == "as set" else remaining
    return {"fault": fault, "times": times, "remaining": left, "at": at or site(fault),
            "delay_ms": delay_ms}


class App:
    """A registered app with a client secret, and the tokens it currently holds."""

    def __init__(self, registered):
        self.id = registered["client_id"]
        self.secret = registered["client_secret"]
        self.access = None
        self.refresh = None


class Checks:
    """The checks, sharing a judge, an HTTP session and the server's endpoints."""

    def __init__(self, base):
        self.base = base
        self.fhir = f"{base}/api/fhir"
        self.simulate_url = f"{base}/oauth/debug/simulate"
        self.token_url = f"{base}/oauth/token"
        self.authorize_url = f"{base}/oauth/authorize"
        self.judge = Judge()
        self.http = requests.Session()

    # -- the debug endpoint ---------------------------------------------------------------

    def simulate(self, client_id, fault, **fields):
        body = {"client_id": client_id, "fault": fault, **fields}
        return self.http.post(self.simulate_url, json=body, timeout=30)

    def turn_on(self, app_id, fault, **fields):
        """Set a fault; checks the 200 and that it is listed last. Returns the list."""
        response = self.simulate(app_id, fault, **fields)
        label = f"simulate {fault} {fields}" if fields else f"simulate {fault}"
        self.judge.status(label, response, 200)
        body = json_of(response)
        self.judge.equal(f"{label}: client_id", body.get("client_id"), app_id)
        faults = body.get("faults") or [{}]
        self.judge.equal(f"{label}: listed last", faults[-1].get("fault"), fault)
        return faults

    def listed(self, app_id):
        response = self.http.get(self.simulate_url, params={"client_id": app_id}, timeout=30)
        self.judge.status("GET /oauth/debug/simulate", response, 200)
        body = json_of(response)
        self.judge.equal("GET /oauth/debug/simulate: client_id", body.get("client_id"), app_id)
        return body.get("faults")

    def clear(self, app_id):
        response = self.http.delete(self.simulate_url, params={"client_id": app_id},
                                    timeout=30)
        self.judge.status("DELETE /oauth/debug/simulate", response, 200)
        return json_of(response)

    def refused(self, label, response, error, keywords=()):
        j = self.judge
        j.status(label, response, 400)
        body = json_of(response)
        j.equal(f"{label}: error", body.get("error"), error)
        description = str(body.get("error_description", ""))
        j.check(f"{label}: error_description", description.strip() != "", response.text[:300])
        for word in keywords:
            j.check(f"{label}: error_description names {word}",
                    word.lower() in description.lower(), description)

    # -- an app's requests ----------------------------------------------------------------

    def register(self, name):
        response = self.http.post(f"{self.base}/oauth/register", timeout=30, json={
            "client_name": name, "redirect_uris": [REDIRECT], "scope": SCOPE})
        self.judge.status(f"register {name}", response, 201)
        app = App(response.json())
        self.tokens(app)
        return app

    def tokens(self, app):
        """A fresh access and refresh token for the app, from the debug endpoint."""
        response = self.http.post(f"{self.base}/oauth/debug/token", timeout=30, json={
            "client_id": app.id, "username": USER, "patient_id": PATIENT})
        self.judge.status("debug token", response, 200)
        body = response.json()
        app.access, app.refresh = body["access_token"], body["refresh_token"]

    def read(self, token, path=f"Patient/{PATIENT}", base=None):
        return self.http.get(f"{base or self.fhir}/{path}", timeout=30,
                             headers={"Authorization": f"Bearer {token}"})

    def refresh(self, app, headers=None):
        """A refresh_token grant with the app's secret; keeps the rotated tokens on 200."""
        response = self.http.post(self.token_url, auth=(app.id, app.secret), timeout=30,
                                  headers=headers, data={"grant_type": "refresh_token",
                                                         "refresh_token": app.refresh})
        if response.status_code == 200:
            body = response.json()
            app.access = body["access_token"]
            app.refresh = body.get("refresh_token", app.refresh)
        return response

    def authorize_query(self, app, **changes):
        _, challenge_ = html_forms.pkce()
        query = {"response_type": "code", "client_id": app.id, "redirect_uri": REDIRECT,
                 "scope": "launch/patient patient/*.read offline_access",
                 "state": secrets.token_urlsafe(16), "aud": self.fhir,
                 "code_challenge": challenge_, "code_challenge_method": "S256", **changes}
        return {k: v for k, v in query.items() if v is not None}

    def authorize(self, query):
        """The first answer to a browser (not signed in) opening the authorize link."""
        return requests.get(self.authorize_url, params=query, allow_redirects=False,
                            timeout=30)

    def code(self, app):
        """A code for the app through the HTML forms, and its PKCE verifier."""
        verifier, challenge_ = html_forms.pkce()
        query = self.authorize_query(app, code_challenge=challenge_)
        code = html_forms.sign_in_and_approve(self.judge, self.base, query, USER, PASSWORD,
                                              PATIENT)
        return code, verifier

    def exchange(self, app, code, verifier):
        """A code exchange with the app's secret; keeps the tokens on 200."""
        response = self.http.post(self.token_url, auth=(app.id, app.secret), timeout=30, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": verifier})
        if response.status_code == 200:
            body = response.json()
            app.access, app.refresh = body["access_token"], body.get("refresh_token")
        return response

    # -- what an answer must look like ------------------------------------------------------

    def simulated(self, label, response, fault, remaining=0):
        left = "until-cleared" if remaining is None else str(remaining)
        self.judge.equal(f"{label}: {HEADER}", response.headers.get(HEADER),
                         f"{fault}; remaining={left}")

    def real(self, label, response, status=200):
        """A real answer: this status, no simulation header."""
        self.judge.status(label, response, status)
        self.judge.check(f"{label}: no {HEADER} header", HEADER not in response.headers,
                         str(response.headers.get(HEADER)))

    def outcome(self, label, response, status, issue=None):
        """An OperationOutcome answer with this status (and issue code)."""
        j = self.judge
        j.status(label, response, status)
        j.check(f"{label}: application/fhir+json",
                response.headers.get("Content-Type", "").startswith("application/fhir+json"),
                response.headers.get("Content-Type"))
        body = json_of(response)
        j.equal(f"{label}: an OperationOutcome", body.get("resourceType"), "OperationOutcome")
        issues = body.get("issue") or [{}]
        j.check(f"{label}: the issue has diagnostics", bool(issues[0].get("diagnostics")),
                response.text[:300])
        if issue:
            j.equal(f"{label}: issue code", issues[0].get("code"), issue)
        return body

    def oauth_error(self, label, response, status, error, keywords=()):
        j = self.judge
        j.status(label, response, status)
        j.check(f"{label}: application/json",
                response.headers.get("Content-Type", "").startswith("application/json"),
                response.headers.get("Content-Type"))
        body = json_of(response)
        j.equal(f"{label}: error", body.get("error"), error)
        j.check(f"{label}: no access_token", "access_token" not in body, response.text[:300])
        description = str(body.get("error_description", ""))
        j.check(f"{label}: error_description", description.strip() != "", response.text[:300])
        for word in keywords:
            j.check(f"{label}: error_description names {word}",
                    word.lower() in description.lower(), description)
        j.check(f"{label}: Cache-Control no-store",
                "no-store" in response.headers.get("Cache-Control", ""),
                str(response.headers.get("Cache-Control")))

    def exposed(self, label, response):
        """A browser app's script may read Retry-After and Smartnb-Simulated (CORS)."""
        names = {n.strip().lower() for n in
                 response.headers.get("Access-Control-Expose-Headers", "").split(",")}
        self.judge.check(f"{label} from a browser app: Retry-After and {HEADER} exposed",
                         {"retry-after", HEADER.lower()} <= names, str(names))
        self.judge.equal(f"{label} from a browser app: {HEADER}", response.headers.get(HEADER),
                         f"{label}; remaining=0")

    def unaffected(self, other, label):
        """The second app: its read is real and it has no faults."""
        self.real(f"{label}: the other app's read", self.read(other.access))
        self.judge.equal(f"{label}: the other app has no faults", self.listed(other.id), [])

    # -- the endpoint itself ----------------------------------------------------------------

    def endpoint(self, app, backend):
        j = self.judge
        j.equal("no faults at first", self.listed(app.id), [])
        faults = self.turn_on(app.id, "fhir_server_error")
        j.equal("the answer lists the fault as set", faults, [entry("fhir_server_error")])
        faults = self.turn_on(app.id, "token_unavailable", times=3)
        j.equal("a second fault is queued after the first", faults,
                [entry("fhir_server_error"), entry("token_unavailable", 3)])
        faults = self.turn_on(app.id, "slow", delay_ms=1500, at="token", times=0)
        j.equal("slow with its delay and place", faults[-1],
                entry("slow", 0, at="token", delay_ms=1500))
        faults = self.turn_on(app.id, "slow")
        j.equal("slow's defaults: 2000 ms, at any place", faults[-1],
                entry("slow", delay_ms=2000))
        j.equal("GET lists them in order", self.listed(app.id), faults)
        j.equal("DELETE clears them", self.clear(app.id),
                {"client_id": app.id, "faults": [], "cleared": 4})
        j.equal("none left", self.listed(app.id), [])
        j.equal("DELETE with none", self.clear(app.id),
                {"client_id": app.id, "faults": [], "cleared": 0})
        faults = self.turn_on(app.id, "fhir_throttled", times=1000)
        j.equal("times up to 1000", faults, [entry("fhir_throttled", 1000)])
        self.clear(app.id)

        self.refused("an unknown fault", self.simulate(app.id, "fhir_exploded"),
                     "unknown_fault", FAULTS)
        response = self.http.post(self.simulate_url, json={"client_id": app.id}, timeout=30)
        j.status("no fault", response, 400)
        j.check("no fault: unknown_fault or invalid_request",
                json_of(response).get("error") in ("unknown_fault", "invalid_request"),
                response.text[:300])
        self.refused("an unknown client", self.simulate("no-such-client", "slow"), "no_client")
        self.refused("no client_id", self.http.post(
            self.simulate_url, json={"fault": "slow"}, timeout=30), "no_client")
        for method in ("get", "delete"):
            response = getattr(self.http, method)(self.simulate_url, timeout=30,
                                                  params={"client_id": "no-such-client"})
            self.refused(f"{method.upper()} for an unknown client", response, "no_client")
        for label, fields, keywords in [
            ("times -1", {"times": -1}, ["times"]),
            ("times 1001", {"times": 1001}, ["times"]),
            ("times as text", {"times": "2"}, ["times"]),
            ("times 1.5", {"times": 1.5}, ["times"]),
            ("delay_ms for a fault other than slow", {"delay_ms": 10}, ["delay_ms"]),
            ("at for a fault other than slow", {"at": "fhir"}, ["at"]),
            ("an unknown field", {"colour": "red"}, ["colour"]),
        ]:
            self.refused(f"simulate with {label}",
                         self.simulate(app.id, "fhir_server_error", **fields),
                         "invalid_request", keywords)
        for label, fields in [("delay_ms 0", {"delay_ms": 0}),
                              ("delay_ms 60001", {"delay_ms": 60001}),
                              ("at the database", {"at": "database"})]:
            self.refused(f"slow with {label}", self.simulate(app.id, "slow", **fields),
                         "invalid_request")
        response = self.http.post(self.simulate_url, timeout=30,
                                  data={"client_id": app.id, "fault": "slow"})
        j.status("a form-encoded body", response, 415)
        j.equal("a form-encoded body: error", json_of(response).get("error"), "invalid_request")
        self.refused("token_replayed_jti for a client with a secret",
                     self.simulate(app.id, "token_replayed_jti"), "invalid_request")
        for fault in ["authorize_access_denied", "token_invalid_grant",
                      "token_expired_refresh"]:
            self.refused(f"{fault} for a client_credentials client",
                         self.simulate(backend.id, fault), "invalid_request")
        j.equal("nothing was queued by the refusals", self.listed(app.id), [])
        j.equal("nor for the backend client", self.listed(backend.id), [])

        for n in range(100):
            response = self.simulate(app.id, "fhir_server_error")
            if response.status_code != 200:
                j.status(f"queue fault {n + 1} of 100", response, 200)
        j.check("100 faults queued", len(self.listed(app.id)) == 100)
        response = self.simulate(app.id, "fhir_server_error")
        j.status("a 101st fault is refused", response, 400)
        j.check("the refusal is an OAuth error naming 100",
                "100" in str(json_of(response).get("error_description")), response.text[:300])
        j.equal("clearing 100", self.clear(app.id).get("cleared"), 100)

    # -- FHIR faults -------------------------------------------------------------------------

    def fhir_faults(self, app, other):
        j = self.judge
        unknown = self.read("not-a-token-anyone-has")
        j.status("an unknown token", unknown, 401)

        self.turn_on(app.id, "fhir_expired_token")
        response = self.read(app.access)
        self.outcome("fhir_expired_token", response, 401)
        scheme, params = challenge(response.headers.get("WWW-Authenticate"))
        j.equal("fhir_expired_token: a Bearer challenge", scheme, "Bearer")
        j.equal("fhir_expired_token: realm", params.get("realm"), "smartnb")
        j.equal("fhir_expired_token: error", params.get("error"), "invalid_token")
        j.check("fhir_expired_token: error_description says expired",
                "expired" in params.get("error_description", ""), str(params))
        self.simulated("fhir_expired_token", response, "fhir_expired_token")
        self.unaffected(other, "fhir_expired_token")
        self.real("after fhir_expired_token the same token reads", self.read(app.access))

        self.turn_on(app.id, "fhir_invalid_token")
        response = self.read(app.access)
        self.outcome("fhir_invalid_token", response, 401)
        j.equal("fhir_invalid_token: the body of an unknown token", response.json(),
                unknown.json())
        j.equal("fhir_invalid_token: the challenge of an unknown token",
                response.headers.get("WWW-Authenticate"), unknown.headers.get("WWW-Authenticate"))
        self.simulated("fhir_invalid_token", response, "fhir_invalid_token")
        self.real("after fhir_invalid_token", self.read(app.access))

        self.turn_on(app.id, "fhir_insufficient_scope")
        response = self.read(app.access, f"Observation?patient={PATIENT}")
        self.outcome("fhir_insufficient_scope (a search)", response, 403)
        scheme, params = challenge(response.headers.get("WWW-Authenticate"))
        j.equal("fhir_insufficient_scope: a Bearer challenge", scheme, "Bearer")
        j.equal("fhir_insufficient_scope: error", params.get("error"), "insufficient_scope")
        self.simulated("fhir_insufficient_scope", response, "fhir_insufficient_scope")
        self.real("after fhir_insufficient_scope", self.read(app.access))

        self.turn_on(app.id, "fhir_server_error")
        response = self.read(app.access, f"Patient/{PATIENT}/$everything")
        self.outcome("fhir_server_error (an operation)", response, 500, "exception")
        self.simulated("fhir_server_error", response, "fhir_server_error")
        self.unaffected(other, "fhir_server_error")
        self.real("after fhir_server_error", self.read(app.access))

        self.turn_on(app.id, "fhir_throttled")
        response = self.read(app.access, "Patient")
        self.outcome("fhir_throttled (a search)", response, 429, "throttled")
        j.equal("fhir_throttled: Retry-After", response.headers.get("Retry-After"), "2")
        self.simulated("fhir_throttled", response, "fhir_throttled")
        self.real("after fhir_throttled", self.read(app.access))
        self.turn_on(app.id, "fhir_throttled")
        response = self.http.get(f"{self.fhir}/Patient/{PATIENT}", timeout=30, headers={
            "Authorization": f"Bearer {app.access}", "Origin": "http://localhost:9001"})
        self.exposed("fhir_throttled", response)

        # Not protected FHIR requests: the metadata, the open copy, the OAuth endpoints.
        self.turn_on(app.id, "fhir_server_error", times=0)
        self.real("/metadata with the app's token", self.read(app.access, "metadata"))
        self.real("/api/open-fhir with the app's token",
                  self.read(app.access, f"Patient/{PATIENT}", f"{self.base}/api/open-fhir"))
        self.real("a refresh while a FHIR fault is set", self.refresh(app))
        self.real("the smart-configuration", self.http.get(
            f"{self.base}/.well-known/smart-configuration", timeout=30))
        self.unaffected(other, "fhir_server_error until cleared")
        self.outcome("with the token the refresh gave", self.read(app.access), 500)
        j.equal("still set", self.listed(app.id), [entry("fhir_server_error", 0)])
        self.clear(app.id)

    # -- times, order, clearing -----------------------------------------------------------------

    def counting(self, app, other):
        j = self.judge
        faults = self.turn_on(app.id, "fhir_server_error", times=2)
        j.equal("times=2: remaining 2", faults, [entry("fhir_server_error", 2)])
        response = self.read(app.access)
        self.outcome("times=2, first request", response, 500)
        self.simulated("times=2, first request", response, "fhir_server_error", 1)
        j.equal("times=2: remaining 1", self.listed(app.id),
                [entry("fhir_server_error", 2, remaining=1)])
        self.unaffected(other, "times=2 between the requests")
        response = self.read(app.access)
        self.outcome("times=2, second request", response, 500)
        self.simulated("times=2, second request", response, "fhir_server_error", 0)
        j.equal("times=2: gone after two", self.listed(app.id), [])
        self.real("times=2, third request", self.read(app.access))

        faults = self.turn_on(app.id, "fhir_throttled", times=0)
        j.equal("times=0: remaining null", faults, [entry("fhir_throttled", 0)])
        for n in (1, 2, 3):
            response = self.read(app.access)
            self.outcome(f"times=0, request {n}", response, 429)
            self.simulated(f"times=0, request {n}", response, "fhir_throttled", None)
        j.equal("times=0: still listed", self.listed(app.id), [entry("fhir_throttled", 0)])
        j.equal("times=0: DELETE clears it", self.clear(app.id),
                {"client_id": app.id, "faults": [], "cleared": 1})
        self.real("times=0, after clearing", self.read(app.access))

        # Consumed in order; a fault that cannot apply here waits for its place.
        self.turn_on(app.id, "fhir_throttled")
        self.turn_on(app.id, "token_unavailable")
        faults = self.turn_on(app.id, "fhir_server_error")
        j.equal("three queued in order", [f["fault"] for f in faults],
                ["fhir_throttled", "token_unavailable", "fhir_server_error"])
        self.outcome("in order: first the throttle", self.read(app.access), 429)
        response = self.read(app.access)
        self.outcome("in order: then the server error (the token fault waits)", response, 500)
        self.simulated("in order: the server error", response, "fhir_server_error")
        j.equal("in order: the token fault is left", self.listed(app.id),
                [entry("token_unavailable")])
        self.real("in order: the next read is real", self.read(app.access))
        self.oauth_error("in order: the refresh meets the token fault",
                         self.refresh(app), 503, "temporarily_unavailable")
        j.equal("in order: all consumed", self.listed(app.id), [])

    # -- token faults ----------------------------------------------------------------------------

    def token_faults(self, app, other):
        j = self.judge
        self.turn_on(app.id, "token_invalid_client")
        response = self.refresh(app)
        self.oauth_error("token_invalid_client", response, 401, "invalid_client")
        scheme, params = challenge(response.headers.get("WWW-Authenticate"))
        j.equal("token_invalid_client: a Basic challenge", (scheme, params.get("realm")),
                ("Basic", "smartnb"))
        wrong = self.http.post(self.token_url, auth=(app.id, "a-guessed-secret"), timeout=30,
                               data={"grant_type": "refresh_token", "refresh_token": app.refresh})
        j.equal("token_invalid_client: the challenge of a wrong secret",
                response.headers.get("WWW-Authenticate"), wrong.headers.get("WWW-Authenticate"))
        self.simulated("token_invalid_client", response, "token_invalid_client")
        self.real("the other app's refresh", self.refresh(other))
        self.real("after token_invalid_client the same refresh token works", self.refresh(app))

        self.turn_on(app.id, "token_invalid_scope")
        response = self.refresh(app)
        self.oauth_error("token_invalid_scope", response, 400, "invalid_scope")
        self.simulated("token_invalid_scope", response, "token_invalid_scope")
        self.real("after token_invalid_scope", self.refresh(app))

        self.turn_on(app.id, "token_unavailable")
        response = self.refresh(app)
        self.oauth_error("token_unavailable", response, 503, "temporarily_unavailable")
        j.equal("token_unavailable: Retry-After", response.headers.get("Retry-After"), "2")
        self.simulated("token_unavailable", response, "token_unavailable")
        self.real("after token_unavailable the same refresh token works", self.refresh(app))
        self.turn_on(app.id, "token_unavailable")
        response = self.refresh(app, headers={"Origin": "http://localhost:9001"})
        self.exposed("token_unavailable", response)

        # Only for a code exchange: a refresh passes by it; the refused code is not spent.
        self.turn_on(app.id, "token_invalid_grant")
        self.real("token_invalid_grant leaves a refresh alone", self.refresh(app))
        j.equal("token_invalid_grant: still set", self.listed(app.id),
                [entry("token_invalid_grant")])
        code, verifier = self.code(app)
        response = self.exchange(app, code, verifier)
        self.oauth_error("token_invalid_grant", response, 400, "invalid_grant")
        self.simulated("token_invalid_grant", response, "token_invalid_grant")
        response = self.exchange(app, code, verifier)
        self.real("the refused code is not spent: it exchanges now", response)
        j.equal("the exchange gives the patient", json_of(response).get("patient"), PATIENT)

        # Only for a refresh: a code exchange passes by it; the refresh token is kept.
        self.turn_on(app.id, "token_expired_refresh")
        code, verifier = self.code(app)
        self.real("token_expired_refresh leaves a code exchange alone",
                  self.exchange(app, code, verifier))
        j.equal("token_expired_refresh: still set", self.listed(app.id),
                [entry("token_expired_refresh")])
        response = self.refresh(app)
        self.oauth_error("token_expired_refresh", response, 400, "invalid_grant", ["expired"])
        self.simulated("token_expired_refresh", response, "token_expired_refresh")
        self.real("the refresh token is not destroyed: it refreshes now", self.refresh(app))

        # Faults answer only once the client is authenticated: a wrong secret is real.
        self.turn_on(app.id, "token_unavailable")
        response = self.http.post(self.token_url, auth=(app.id, "a-guessed-secret"),
                                  timeout=30, data={"grant_type": "refresh_token",
                                                    "refresh_token": app.refresh})
        self.real("a wrong secret while token_unavailable is set", response, 401)
        j.equal("a wrong secret: the real invalid_client", json_of(response).get("error"),
                "invalid_client")
        j.equal("a wrong secret leaves the fault", self.listed(app.id),
                [entry("token_unavailable")])
        self.clear(app.id)
        self.unaffected(other, "token faults")

    def replayed_jti(self, backend, app):
        j = self.judge
        grant = {"grant_type": "client_credentials", "scope": backend.scope}
        self.turn_on(backend.id, "token_replayed_jti")
        response = self.http.post(self.token_url, data={**grant, **backend.auth()}, timeout=30)
        self.oauth_error("token_replayed_jti", response, 401, "invalid_client", ["jti"])
        j.check("token_replayed_jti: WWW-Authenticate",
                bool(response.headers.get("WWW-Authenticate")), str(response.headers))
        self.simulated("token_replayed_jti", response, "token_replayed_jti")
        response = self.http.post(self.token_url, data={**grant, **backend.auth()}, timeout=30)
        self.real("after token_replayed_jti a fresh assertion gets a token", response)
        token = json_of(response).get("access_token")

        self.turn_on(backend.id, "token_unavailable")
        response = self.http.post(self.token_url, data={**grant, **backend.auth()}, timeout=30)
        self.oauth_error("token_unavailable for client_credentials", response, 503,
                         "temporarily_unavailable")
        self.turn_on(backend.id, "fhir_throttled")
        self.outcome("fhir_throttled for a system token", self.read(token, "Patient"), 429)
        self.real("the app is not affected by the backend's faults", self.read(app.access))
        self.real("nor is the backend's next read", self.read(token, "Patient"))

    # -- authorize faults --------------------------------------------------------------------

    def authorize_faults(self, app, other):
        j = self.judge
        before = self.authorize(self.authorize_query(app))
        j.check("a real authorize sends the browser to sign in",
                before.status_code in (302, 303)
                and not before.headers.get("Location", "").startswith(REDIRECT),
                f"{before.status_code} {before.headers.get('Location')}")

        for fault, error in AUTHORIZE_REDIRECTS.items():
            self.turn_on(app.id, fault)
            query = self.authorize_query(app)
            response = self.authorize(query)
            j.status(fault, response, 302)
            location = response.headers.get("Location", "")
            j.check(f"{fault}: back to the redirect_uri", location.startswith(f"{REDIRECT}?"),
                    location)
            params = parse_qs(urlparse(location).query)
            j.equal(f"{fault}: error", params.get("error"), [error])
            j.equal(f"{fault}: state", params.get("state"), [query["state"]])
            j.check(f"{fault}: error_description", bool(params.get("error_description")),
                    location)
            j.check(f"{fault}: no code", "code" not in params, location)
            self.simulated(fault, response, fault)
            other_response = self.authorize(self.authorize_query(other))
            j.check(f"{fault}: the other app's authorize is real",
                    not other_response.headers.get("Location", "").startswith(REDIRECT)
                    and HEADER not in other_response.headers,
                    f"{other_response.status_code} {other_response.headers}")
            response = self.authorize(self.authorize_query(app))
            j.check(f"after {fault} the authorize is real",
                    response.status_code == before.status_code and HEADER not in response.headers
                    and not response.headers.get("Location", "").startswith(REDIRECT),
                    f"{response.status_code} {response.headers}")

        for fault, words in [("authorize_invalid_client",
                              f"No app with client_id {app.id} is registered here."),
                             ("authorize_invalid_redirect_uri", "redirect_uri")]:
            self.turn_on(app.id, fault)
            response = self.authorize(self.authorize_query(app))
            j.status(fault, response, 400)
            j.check(f"{fault}: an HTML page",
                    response.headers.get("Content-Type", "").startswith("text/html"),
                    response.headers.get("Content-Type"))
            j.check(f"{fault}: no Location", "Location" not in response.headers,
                    str(response.headers))
            j.check(f"{fault}: the page says {words!r}", words in response.text,
                    response.text[:800])
            self.simulated(fault, response, fault)
            self.real(f"after {fault}", self.authorize(self.authorize_query(app)),
                      before.status_code)

        # A request the server does not trust gets its real page; the fault waits.
        self.turn_on(app.id, "authorize_access_denied")
        response = self.authorize(self.authorize_query(app,
                                                       redirect_uri="http://localhost:9/other"))
        self.real("an unregistered redirect_uri while a fault is set", response, 400)
        j.check("its real page names the redirect_uri", "redirect_uri" in response.text,
                response.text[:500])
        j.equal("the fault waits", self.listed(app.id), [entry("authorize_access_denied")])
        self.clear(app.id)

    def launch_faults(self, app, other):
        j = self.judge

        def launch(**fields):
            return self.http.post(f"{self.base}/oauth/debug/launch", timeout=30, json={
                "patient_id": PATIENT, "username": USER, **fields})

        response = launch(client_id=app.id, fault="authorize_access_denied")
        j.status("a launch with authorize_access_denied", response, 200)
        query = self.authorize_query(app, launch=json_of(response).get("launch"),
                                     scope=SCOPE)
        response = self.authorize(query)
        location = response.headers.get("Location", "")
        params = parse_qs(urlparse(location).query)
        j.equal("the launch's authorize: access_denied", params.get("error"), ["access_denied"])
        j.equal("the launch's authorize: state", params.get("state"), [query["state"]])
        self.simulated("the launch's authorize", response, "authorize_access_denied")
        j.equal("the launch's fault is spent", self.listed(app.id), [])

        # A launch any app may spend: its fault goes to the app that spends it.
        response = launch(fault="fhir_server_error")
        j.status("an unbound launch with fhir_server_error", response, 200)
        query = self.authorize_query(other, launch=json_of(response).get("launch"),
                                     scope=SCOPE)
        self.authorize(query)
        j.equal("the spending app has the launch's fault", self.listed(other.id),
                [entry("fhir_server_error")])
        j.equal("the first app has none", self.listed(app.id), [])
        self.outcome("the spending app's read", self.read(other.access), 500)
        self.real("the first app's read", self.read(app.access))

        response = launch(client_id=app.id, fault="fhir_exploded")
        self.refused("a launch with an unknown fault", response, "unknown_fault",
                     ["fhir_server_error"])

    # -- through fhirclient --------------------------------------------------------------------

    def with_fhirclient(self, app, other):
        from fhirclient import client as fhir_client
        from fhirclient.models import patient
        from fhirclient.server import (FHIRPermissionDeniedException,
                                       FHIRUnauthorizedException)

        j = self.judge

        def failure(action):
            try:
                action()
            except Exception as error:  # noqa: BLE001 - the failure is what is checked
                return error
            return None

        def raised(label, error, kind, status):
            j.check(f"fhirclient: {label} raises {kind.__name__}", isinstance(error, kind),
                    f"{type(error).__name__}: {error}")
            response = getattr(error, "response", None)
            j.equal(f"fhirclient: {label}: status", getattr(response, "status_code", None),
                    status)
            return response

        smart = fhir_client.FHIRClient(settings={
            "app_id": app.id, "app_secret": app.secret, "api_base": self.fhir,
            "redirect_uri": REDIRECT, "scope": "launch/patient patient/*.read offline_access"})
        smart.prepare()

        # An authorize fault: the callback carries the error, and fhirclient raises it.
        self.turn_on(app.id, "authorize_access_denied")
        response = self.authorize(dict(parse_qsl(urlparse(smart.authorize_url).query)))
        location = response.headers.get("Location", "")
        j.check("fhirclient's authorize URL meets access_denied",
                parse_qs(urlparse(location).query).get("error") == ["access_denied"], location)
        error = failure(lambda: smart.handle_callback(location))
        j.check("fhirclient: handle_callback raises for access_denied",
                error is not None and not smart.ready, str(error))

        # Its own authorize URL through the forms, then a refused code exchange.
        query = dict(parse_qsl(urlparse(smart.authorize_url).query))
        code = html_forms.sign_in_and_approve(j, self.base, query, USER, PASSWORD, PATIENT)
        callback = f"{REDIRECT}?code={code}&state={query['state']}"
        self.turn_on(app.id, "token_invalid_grant")
        error = failure(lambda: smart.handle_callback(callback))
        response = raised("the code exchange under token_invalid_grant", error,
                          requests.HTTPError, 400)
        j.equal("fhirclient: the exchange's error", json_of(response).get("error"),
                "invalid_grant")
        error = failure(lambda: smart.handle_callback(callback))
        j.check("fhirclient: the same callback exchanges now", error is None and smart.ready,
                str(error))
        j.equal("fhirclient: the launch context's patient", smart.patient_id, PATIENT)

        def read():
            return patient.Patient.read(PATIENT, smart.server)

        for fault, kind, status in [
            ("fhir_expired_token", FHIRUnauthorizedException, 401),
            ("fhir_invalid_token", FHIRUnauthorizedException, 401),
            ("fhir_insufficient_scope", FHIRPermissionDeniedException, 403),
            ("fhir_server_error", requests.HTTPError, 500),
            ("fhir_throttled", requests.HTTPError, 429),
        ]:
            self.turn_on(app.id, fault)
            response = raised(f"Patient.read under {fault}", failure(read), kind, status)
            j.equal(f"fhirclient: {fault}: {HEADER}", response.headers.get(HEADER),
                    f"{fault}; remaining=0")
            self.unaffected(other, f"fhirclient {fault}")
            j.equal(f"fhirclient: the read after {fault}", read().id, PATIENT)

        # fhirclient's own recovery: its patient property refreshes on a 401 and reads again.
        first_token = smart.server.auth.access_token
        self.turn_on(app.id, "fhir_expired_token")
        smart._patient = None  # noqa: SLF001 - make the property read again
        found = smart.patient
        j.equal("fhirclient recovers from fhir_expired_token by refreshing",
                getattr(found, "id", None), PATIENT)
        j.check("fhirclient holds a new access token",
                smart.server.auth.access_token not in (None, first_token))
        j.equal("the fault was spent by the first read", self.listed(app.id), [])

        for fault, kind, status in [("token_expired_refresh", requests.HTTPError, 400),
                                    ("token_unavailable", requests.HTTPError, 503),
                                    ("token_invalid_client", FHIRUnauthorizedException, 401)]:
            self.turn_on(app.id, fault)
            response = raised(f"reauthorize under {fault}", failure(smart.reauthorize),
                              kind, status)
            j.equal(f"fhirclient: {fault}: {HEADER}", response.headers.get(HEADER),
                    f"{fault}; remaining=0")
            error = failure(smart.reauthorize)
            j.check(f"fhirclient: after {fault} its refresh token still works", error is None,
                    str(error))
        j.equal("fhirclient: reads after the refreshes", read().id, PATIENT)
        app.access = smart.server.auth.access_token
        app.refresh = smart.server.auth.refresh_token

    # -- slow ---------------------------------------------------------------------------------

    def slow(self, app, other):
        j = self.judge
        self.turn_on(app.id, "slow", delay_ms=1, at="token")
        self.real("slow at token: a read is not its place", self.read(app.access))
        j.equal("slow at token: still set", self.listed(app.id),
                [entry("slow", at="token", delay_ms=1)])
        response = self.refresh(app)
        self.real_slow("slow at token: the refresh", response)

        self.turn_on(app.id, "slow", delay_ms=1)
        response = self.authorize(self.authorize_query(app))
        j.check("slow at any place: the authorize's real answer",
                response.status_code in (302, 303)
                and not response.headers.get("Location", "").startswith(REDIRECT),
                f"{response.status_code} {response.headers}")
        self.simulated("slow at any place: the authorize", response, "slow")

        # While one read is delayed, other requests come and go: counted, not timed.
        self.turn_on(app.id, "slow", delay_ms=5000, at="fhir")
        answer = {}
        delayed = threading.Thread(target=lambda: answer.update(response=self.read(app.access)))
        delayed.start()
        taken, completed, wrong = False, 0, []
        while delayed.is_alive():
            if not taken:
                listed = self.http.get(self.simulate_url, params={"client_id": app.id},
                                       timeout=30)
                taken = listed.status_code == 200 and json_of(listed).get("faults") == []
                continue
            response = self.read(other.access)
            if response.status_code != 200 or HEADER in response.headers:
                wrong.append(f"{response.status_code} {response.headers.get(HEADER)}")
            elif delayed.is_alive():
                completed += 1
        delayed.join()
        j.check("the slow fault was taken while its read was delayed", taken)
        j.equal("the other app's reads during the delay were real", wrong, [])
        j.check("other requests completed while one was delayed", completed >= 1,
                f"{completed} completed")
        self.real_slow("slow at fhir: the delayed read", answer.get("response"))

    def real_slow(self, label, response):
        self.judge.status(label, response, 200)
        self.simulated(label, response, "slow")

    # -- one app's faults never touch another ------------------------------------------------

    def isolation(self, app, other):
        j = self.judge
        for fault in FAULTS:
            if fault != "token_replayed_jti":
                self.turn_on(app.id, fault, times=0)
        j.equal("every fault set until cleared", len(self.listed(app.id)), len(FAULTS) - 1)
        self.unaffected(other, "every fault set for the first app")
        response = self.authorize(self.authorize_query(other))
        j.check("the other app's authorize is real",
                response.status_code in (302, 303) and HEADER not in response.headers
                and not response.headers.get("Location", "").startswith(REDIRECT),
                f"{response.status_code} {response.headers}")
        self.real("the other app's refresh", self.refresh(other))
        code, verifier = self.code(other)
        self.real("the other app's code exchange", self.exchange(other, code, verifier))
        self.real("the other app's read with its new token", self.read(other.access))
        response = self.read(app.access)
        self.outcome("the first app's read meets its first FHIR fault", response, 401)
        self.simulated("the first app's read", response, "fhir_expired_token", None)
        j.equal("clearing all", self.clear(app.id).get("cleared"), len(FAULTS) - 1)
        self.real("the first app reads again", self.read(app.access))


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    checks = Checks(sys.argv[1].rstrip("/"))
    app = checks.register("Simulated faults: the app under test")
    other = checks.register("Simulated faults: a second app")
    key = Key.rsa("RS384")
    response = checks.http.post(f"{checks.base}/oauth/register", timeout=30, json={
        "client_name": "Simulated faults: a backend service",
        "grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
        "scope": "system/*.rs", "jwks": {"keys": [key.jwk]}})
    checks.judge.status("register a backend service", response, 201)
    backend = Asserting(response.json()["client_id"], key, checks.token_url, "system/*.rs")

    checks.endpoint(app, backend)
    checks.fhir_faults(app, other)
    checks.counting(app, other)
    checks.token_faults(app, other)
    checks.replayed_jti(backend, app)
    checks.authorize_faults(app, other)
    checks.launch_faults(app, other)
    checks.with_fhirclient(app, other)
    checks.slow(app, other)
    checks.isolation(app, other)
    checks.judge.summary()


if __name__ == "__main__":
    main()
