"""A participant's complete SMART flow through the portal's HTML forms, as a browser and
an app would run it: register, authorize, sign in, pick the patient, approve, exchange the
code, read FHIR, refresh, then revoke the approval at /apps and see the tokens die.

Each step records the replica that answered it (nginx's X-Smartnb-Replica header), and a
step that goes wrong raises `FlowError` naming the step and what came back, so a caller
can count failed flows instead of stopping at the first.
"""

import re
import secrets
from urllib.parse import parse_qs, urljoin, urlparse

import requests

from html_forms import form, pkce

REDIRECT = "http://localhost:9001/authorized"
PASSWORD = "demo-password"
SCOPE = "launch/patient patient/*.read offline_access"

# (user, the patient chosen on the picker, or None when the user has only one)
PARTICIPANTS = [
    ("joseph-ross", "smart-1081332"),
    ("daniel-adams", "smart-1288992"),
    ("daniel-adams", "smart-1032702"),
]


class FlowError(Exception):
    """A step of a flow that did not go as a SMART server's should."""


class Traced(requests.Session):
    """A session that remembers which replica answered each request."""

    def __init__(self):
        super().__init__()
        self.replicas = []

    def request(self, *args, **kwargs):
        kwargs.setdefault("timeout", 30)
        response = super().request(*args, **kwargs)
        self.replicas.append(response.headers.get("X-Smartnb-Replica", "?"))
        return response


def expect(step, response, status):
    """The response, when its status is `status`; FlowError otherwise."""
    if response.status_code != status:
        raise FlowError(f"{step}: status {response.status_code}, wanted {status}: "
                        f"{response.text[:300]!r} (replica {response.headers.get('X-Smartnb-Replica')})")
    return response


def follow(browser, response, step):
    """Follow the server's redirects; the app's redirect URI comes back as a string."""
    for _ in range(10):
        if not response.is_redirect:
            return response
        target = urljoin(response.url, response.headers["location"])
        if target.startswith(REDIRECT):
            return target
        response = browser.get(target, allow_redirects=False)
    raise FlowError(f"{step}: more than ten redirects")


def submit(browser, page, action, fields, step, refused_ok=False):
    """Post the page's form for `action` with these fields; the response, followed."""
    if isinstance(page, str):
        raise FlowError(f"{step}: redirected to the app before the {action} form")
    found = form(page, action)
    if found is None:
        raise FlowError(f"{step}: no form posting to {action} on {page.url} "
                        f"(status {page.status_code}): {page.text[:300]!r}")
    names = {name for name, _ in fields}
    body = [(k, v) for k, v in found["fields"] if k not in names] + list(fields)
    response = browser.post(urljoin(page.url, found["action"]), data=body, allow_redirects=False)
    landed = follow(browser, response, step)
    if not refused_ok and not isinstance(landed, str) and landed.status_code >= 400:
        raise FlowError(f"{step}: status {landed.status_code} "
                        f"(replica {landed.headers.get('X-Smartnb-Replica')}): {title(landed.text)}")
    return landed


def title(html):
    """A page's <title>, to name an error page in a report."""
    found = re.search(r"<title>(.*?)</title>", html, re.S)
    return found.group(1).strip() if found else html[:200]


def register(base, name):
    """A confidential client registered through the proxy."""
    response = requests.post(f"{base}/oauth/register", timeout=30, json={
        "client_name": name,
        "redirect_uris": [REDIRECT],
        "scope": SCOPE,
        "token_endpoint_auth_method": "client_secret_basic",
    })
    return expect("register", response, 201).json()


def sign_in(base, browser, user, password=PASSWORD, refused_ok=False):
    """Sign the browser in at /login directly; the page it lands on."""
    page = browser.get(f"{base}/login", allow_redirects=False)
    return submit(browser, expect("login page", page, 200), "/login",
                  [("username", user), ("password", password)], f"{user}: sign-in",
                  refused_ok=refused_ok)


def authorize(base, browser, app, user, patient, signed_in=False):
    """From /oauth/authorize to the app's redirect; (code, PKCE verifier)."""
    verifier, challenge = pkce()
    state = secrets.token_urlsafe(12)
    query = {
        "response_type": "code", "client_id": app["client_id"], "redirect_uri": REDIRECT,
        "scope": SCOPE, "state": state, "aud": f"{base}/api/fhir",
        "code_challenge": challenge, "code_challenge_method": "S256",
    }
    page = follow(browser, browser.get(f"{base}/oauth/authorize", params=query,
                                       allow_redirects=False), f"{user}: authorize")
    if not signed_in:
        page = submit(browser, page, "/login", [("username", user), ("password", PASSWORD)],
                      f"{user}: sign-in")
    elif not isinstance(page, str) and form(page, "/login") is not None:
        raise FlowError(f"{user}: signed in, yet asked to sign in again")
    if not isinstance(page, str) and form(page, "/oauth/consent/patient") is not None:
        page = submit(browser, page, "/oauth/consent/patient", [("patient", patient)],
                      f"{user}: picker")
    target = submit(browser, page, "/oauth/consent", [("decision", "approve")],
                    f"{user}: consent")
    if not isinstance(target, str):
        raise FlowError(f"{user}: consent did not redirect to the app: {target.text[:300]!r}")
    params = parse_qs(urlparse(target).query)
    if params.get("state") != [state] or "code" not in params:
        raise FlowError(f"{user}: the redirect carries no code or the wrong state: {target}")
    return params["code"][0], verifier


def tokens(base, app, fields, step):
    """A token request with the client's secret (HTTP Basic)."""
    response = requests.post(f"{base}/oauth/token", data=fields, timeout=30,
                             auth=(app["client_id"], app["client_secret"]))
    return expect(step, response, 200).json()


def read_patient(base, access, patient, step):
    """Read the patient with this token and check it is the one granted."""
    response = requests.get(f"{base}/api/fhir/Patient/{patient}", timeout=30,
                            headers={"Authorization": f"Bearer {access}"})
    body = expect(step, response, 200).json()
    if body.get("id") != patient:
        raise FlowError(f"{step}: read {body.get('id')!r}, wanted {patient!r}")


def revoke_at_apps(base, browser, app, user):
    """Revoke this app's approval on the /apps page."""
    page = expect(f"{user}: /apps", browser.get(f"{base}/apps", allow_redirects=False), 200)
    rows = re.findall(r"<tr>(.*?)</tr>", page.text, re.S)
    row = next((r for r in rows if f"<strong>{app['client_name']}</strong>" in r), None)
    if row is None:
        raise FlowError(f"{user}: /apps does not list {app['client_name']}")
    approval = re.search(r'name="approval" value="([^"]+)"', row).group(1)
    csrf = re.search(r'name="csrf" value="([^"]+)"', row).group(1)
    response = browser.post(f"{base}/apps/revoke", data={"csrf": csrf, "approval": approval},
                            allow_redirects=False)
    page = follow(browser, response, f"{user}: revoke")
    if isinstance(page, str):
        raise FlowError(f"{user}: revoking redirected to the app: {page}")
    expect(f"{user}: revoke", page, 200)
    if f"<strong>{app['client_name']}</strong>" in page.text:
        raise FlowError(f"{user}: /apps still lists {app['client_name']} after revoking")


def complete_flow(base, user, patient, name=None):
    """One whole flow with its own app and browser; the replicas that answered it."""
    app = register(base, name or f"replica check {secrets.token_hex(4)}")
    browser = Traced()
    code, verifier = authorize(base, browser, app, user, patient)
    issued = tokens(base, app, {"grant_type": "authorization_code", "code": code,
                                "redirect_uri": REDIRECT, "code_verifier": verifier},
                    f"{user}: code exchange")
    if issued.get("patient") != patient:
        raise FlowError(f"{user}: token for {issued.get('patient')!r}, wanted {patient!r}")
    read_patient(base, issued["access_token"], patient, f"{user}: FHIR read")
    refreshed = tokens(base, app, {"grant_type": "refresh_token",
                                   "refresh_token": issued["refresh_token"]}, f"{user}: refresh")
    read_patient(base, refreshed["access_token"], patient, f"{user}: FHIR read after refresh")
    revoke_at_apps(base, browser, app, user)
    dead = requests.post(f"{base}/oauth/token", timeout=30,
                         auth=(app["client_id"], app["client_secret"]),
                         data={"grant_type": "refresh_token",
                               "refresh_token": refreshed.get("refresh_token", "")})
    expect(f"{user}: refresh after revoking", dead, 400)
    gone = requests.get(f"{base}/api/fhir/Patient/{patient}", timeout=30,
                        headers={"Authorization": f"Bearer {refreshed['access_token']}"})
    expect(f"{user}: FHIR read after revoking", gone, 401)
    return browser.replicas
