"""Walk the server's HTML pages as a browser would: read a page's forms, submit them, and
follow redirects until the app's redirect URI. Shared by the Python checks that sign in
through the authorization pages (relying_party.py, backend_services.py).
"""

import base64
import hashlib
import secrets
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlparse

import requests


class Forms(HTMLParser):
    """The forms of a page: action, and the fields a browser would submit (hidden and text
    inputs, checked boxes and radios), plus each named submit button."""

    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "fields": [], "buttons": []})
        elif not self.forms:
            return
        elif tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.forms[-1]["fields"].append((a["name"], a.get("value", "on")))
            elif kind != "submit":
                self.forms[-1]["fields"].append((a["name"], a.get("value", "")))
        elif tag == "button" and a.get("name"):
            self.forms[-1]["buttons"].append((a["name"], a.get("value", "")))


def form(page, action):
    """The form of this page that posts to `action`, or None."""
    parser = Forms()
    parser.feed(page.text)
    for found in parser.forms:
        if found["action"] == action:
            return found
    return None


def submit(browser, page, found, fields):
    """Post a form as a browser would, with these fields replacing the page's own."""
    names = {name for name, _ in fields}
    body = [(k, v) for k, v in found["fields"] if k not in names] + list(fields)
    return browser.post(urljoin(page.url, found["action"]), data=body, allow_redirects=False)


def follow(browser, response, redirect):
    """Follow redirects on the server; stop at the app's redirect URI (returned as text)."""
    while response.is_redirect:
        target = urljoin(response.url, response.headers["location"])
        if target.startswith(redirect):
            return target
        response = browser.get(target, allow_redirects=False)
    return response


def pkce():
    """A PKCE verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_in_and_approve(judge, base, query, user, password, patient, on_consent=None):
    """Walk /oauth/authorize with this query through sign-in, the patient picker (choosing
    `patient`) and consent; `on_consent(page)` may check the consent page. Returns the
    code from the redirect, after checking that `state` came back."""
    redirect = query["redirect_uri"]
    browser = requests.Session()
    page = follow(browser, browser.get(f"{base}/oauth/authorize", params=query,
                                       allow_redirects=False), redirect)
    login = form(page, "/login")
    judge.check(f"{user}: the sign-in page", login is not None, getattr(page, "text", page)[:300])
    page = follow(browser, submit(browser, page, login,
                                  [("username", user), ("password", password)]), redirect)
    picker = form(page, "/oauth/consent/patient")
    if picker is not None:
        page = follow(browser, submit(browser, page, picker, [("patient", patient)]), redirect)
    consent = form(page, "/oauth/consent")
    judge.check(f"{user}: the consent page", consent is not None,
                getattr(page, "text", page)[:300])
    if on_consent is not None:
        on_consent(page)
    target = follow(browser, submit(browser, page, consent, [("decision", "approve")]),
                    redirect)
    judge.check(f"{user}: redirected to the app", isinstance(target, str), str(target))
    params = parse_qs(urlparse(target).query)
    judge.equal(f"{user}: state comes back", params.get("state"), [query["state"]])
    judge.check(f"{user}: a code", "code" in params, target)
    return params["code"][0]
