#!/usr/bin/env python3
"""Be SMART Backend Services clients and a confidential-asymmetric app nobody here wrote:
make RS384, ES384 and ES256 keys with cryptography, publish them as JWKs (PyJWT's to_jwk),
register with inline `jwks` and with a `jwks_uri` served from a local HTTP server (then
rotate the key), sign client assertions with PyJWT, get client_credentials tokens and read
across patients; break every assertion rule in turn and check that the refusal says which
check failed; then run the authorization-code flow through the HTML forms with assertions
at the token endpoint for the exchange and the refresh.

Usage: backend_services.py BASE_URL        e.g. backend_services.py http://localhost:9000
Exits 1 at the first failed check, saying which and why; ends with "N passed, 0 failed".
"""

import base64
import hashlib
import hmac
import json
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

import html_forms
from judge import Judge as BaseJudge  # noqa: E402

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
REDIRECT = "http://localhost:9001/authorized"
APP_SCOPE = "launch/patient patient/*.read offline_access"
PASSWORD = "demo-password"
USER, PATIENT = "daniel-adams", "smart-1288992"
LAB = "laboratory"
# Seconds after its last fetch of a jwks_uri before the server fetches it again for an
# unknown kid (the server waits 5; a little more here).
REFETCH_PAUSE = 6


class Judge(BaseJudge):
    """The shared checks, and OAuth refusals."""

    def refused(self, name, response, statuses, error, keywords=()):
        """An OAuth error answer: one of these statuses, this error code, and (when
        keywords are given) an error_description naming one of them."""
        statuses = (statuses,) if isinstance(statuses, int) else statuses
        self.check(f"{name}: status {'/'.join(map(str, statuses))}",
                   response.status_code in statuses,
                   f"got {response.status_code}: {response.text[:500]}")
        body = json_of(response)
        self.equal(f"{name}: error", body.get("error"), error)
        self.check(f"{name}: no token", "access_token" not in body, response.text[:500])
        if keywords:
            description = str(body.get("error_description", ""))
            self.check(f"{name}: error_description names {' or '.join(keywords)}",
                       any(k.lower() in description.lower() for k in keywords),
                       f"error_description: {description!r}")


def json_of(response):
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class Key:
    """A key pair and its public JWK (kid, alg, use)."""

    def __init__(self, alg, private, kid=None):
        self.alg = alg
        self.private = private
        self.kid = kid or secrets.token_hex(8)
        family = RSAAlgorithm if alg.startswith("RS") else ECAlgorithm
        self.jwk = family.to_jwk(private.public_key(), as_dict=True)
        # RFC 7517 4.3: "use" and "key_ops" should not come together; the contract has "use".
        self.jwk.pop("key_ops", None)
        self.jwk.update({"kid": self.kid, "alg": alg, "use": "sig"})

    @classmethod
    def rsa(cls, alg="RS384", bits=2048):
        return cls(alg, rsa.generate_private_key(public_exponent=65537, key_size=bits))

    @classmethod
    def ec(cls, alg="ES384"):
        curve = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1}[alg]
        return cls(alg, ec.generate_private_key(curve()))

    def twin(self):
        """Another key of the same algorithm under the same kid."""
        fresh = Key.rsa(self.alg) if self.alg.startswith("RS") else Key.ec(self.alg)
        return Key(self.alg, fresh.private, kid=self.kid)

    def public_pem(self):
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, claims, headers=None):
        """A JWS of these claims; a header set to None is left out."""
        headers = {"kid": self.kid, "typ": "JWT", **(headers or {})}
        return jwt.encode(claims, self.private, algorithm=self.alg,
                          headers={k: v for k, v in headers.items() if v is not None})


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header, claims, hs256_secret=None):
    """A JWS built by hand: alg none (empty signature) or HS256 with the given secret,
    which PyJWT itself refuses to make from a public key."""
    head = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    if hs256_secret is None:
        return head + "."
    mac = hmac.new(hs256_secret, head.encode(), hashlib.sha256).digest()
    return head + "." + b64(mac)


class Client:
    """A registered client that authenticates with a signed assertion."""

    def __init__(self, client_id, key, audience, scope):
        self.id = client_id
        self.key = key
        self.audience = audience
        self.scope = scope

    def claims(self, **changes):
        """Assertion claims; a change to None removes the claim."""
        now = int(time.time())
        claims = {"iss": self.id, "sub": self.id, "aud": self.audience, "iat": now,
                  "exp": now + 240, "jti": secrets.token_urlsafe(24)}
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}

    def assertion(self, key=None, headers=None, **changes):
        return (key or self.key).sign(self.claims(**changes), headers)

    def auth(self, jws=None):
        """The form fields of client authentication by assertion."""
        return {"client_assertion_type": ASSERTION_TYPE,
                "client_assertion": jws if jws is not None else self.assertion()}


class JwksServer:
    """A JWK Set served over HTTP on 127.0.0.1, counting how often it is fetched."""

    def __init__(self):
        self.keys = []
        self.fetches = 0
        self.fetched_at = 0.0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the name http.server calls
                owner.fetches += 1
                owner.fetched_at = time.monotonic()
                body = json.dumps({"keys": [k.jwk for k in owner.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


class Checks:
    """The checks, sharing the judge, an HTTP session and the discovered endpoints."""

    def __init__(self, base):
        self.base = base
        self.fhir = f"{base}/api/fhir"
        self.judge = Judge()
        self.http = requests.Session()
        self.token_endpoint = f"{base}/oauth/token"

    def post(self, url, data, **kwargs):
        return self.http.post(url, data=data, timeout=30, **kwargs)

    def get(self, path, token):
        return self.http.get(f"{self.fhir}/{path}", timeout=30,
                             headers={"Authorization": f"Bearer {token}"})

    # -- discovery -----------------------------------------------------------------------

    def discovery(self):
        j = self.judge
        smart = self.http.get(f"{self.base}/.well-known/smart-configuration", timeout=30).json()
        j.equal("discovery: token_endpoint", smart.get("token_endpoint"), self.token_endpoint)
        j.check("discovery: private_key_jwt",
                "private_key_jwt" in smart.get("token_endpoint_auth_methods_supported", []),
                str(smart))
        algs = smart.get("token_endpoint_auth_signing_alg_values_supported", [])
        for alg in ("RS384", "ES384"):
            j.check(f"discovery: {alg} for assertions", alg in algs, str(algs))
        j.check("discovery: no none or HS* for assertions",
                not any(a == "none" or a.startswith("HS") for a in algs), str(algs))
        j.check("discovery: client_credentials",
                "client_credentials" in smart.get("grant_types_supported", []), str(smart))
        j.check("discovery: client-confidential-asymmetric",
                "client-confidential-asymmetric" in smart.get("capabilities", []), str(smart))
        for scope in ("system/*.read", "system/*.rs"):
            j.check(f"discovery: scopes_supported has {scope}",
                    scope in smart.get("scopes_supported", []), str(smart))
        self.introspection_endpoint = smart.get("introspection_endpoint",
                                                f"{self.base}/oauth/introspect")
        self.revocation_endpoint = smart.get("revocation_endpoint", f"{self.base}/oauth/revoke")

    # -- registration --------------------------------------------------------------------

    def register(self, label, key=None, scope="system/*.rs", jwks_uri=None, **extra):
        """Register a backend client (inline jwks unless jwks_uri); checks the 201."""
        body = {"client_name": f"Backend Services check: {label}",
                "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "private_key_jwt", "scope": scope, **extra}
        if jwks_uri:
            body["jwks_uri"] = jwks_uri
        else:
            body["jwks"] = {"keys": [key.jwk]}
        response = self.http.post(f"{self.base}/oauth/register", json=body, timeout=30)
        j = self.judge
        j.status(f"register {label}", response, 201)
        client = response.json()
        j.check(f"register {label}: a client_id", bool(client.get("client_id")), str(client))
        j.check(f"register {label}: no client_secret", "client_secret" not in client,
                str(client))
        j.equal(f"register {label}: auth method", client.get("token_endpoint_auth_method"),
                "private_key_jwt")
        if jwks_uri:
            j.equal(f"register {label}: jwks_uri echoed", client.get("jwks_uri"), jwks_uri)
        else:
            j.equal(f"register {label}: jwks echoed", client.get("jwks"), body["jwks"])
        return Client(client["client_id"], key, self.token_endpoint, scope)

    def registration_refusals(self):
        small, p521, rsa_key = Key.rsa(bits=1024), ec.generate_private_key(ec.SECP521R1()), \
            Key.rsa()
        with_private = RSAAlgorithm.to_jwk(rsa_key.private, as_dict=True)
        with_private.update({"kid": "private", "alg": "RS384"})
        p521_jwk = ECAlgorithm.to_jwk(p521.public_key(), as_dict=True)
        p521_jwk.update({"kid": "p521", "alg": "ES512"})
        no_kids = [dict(Key.ec().jwk), dict(Key.ec().jwk)]
        for jwk in no_kids:
            del jwk["kid"]
        backend = {"grant_types": ["client_credentials"],
                   "token_endpoint_auth_method": "private_key_jwt", "scope": "system/*.rs"}
        cases = [
            ("a key with private parts", {**backend, "jwks": {"keys": [with_private]}},
             ["private"]),
            ("RSA under 2048 bits", {**backend, "jwks": {"keys": [small.jwk]}}, ["2048"]),
            ("curve P-521", {**backend, "jwks": {"keys": [p521_jwk]}},
             ["P-521", "curve", "crv"]),
            ("several keys without kid", {**backend, "jwks": {"keys": no_kids}}, ["kid"]),
            ("both jwks and jwks_uri", {**backend, "jwks": {"keys": [rsa_key.jwk]},
                                        "jwks_uri": "https://keys.example.org/jwks.json"},
             ["jwks_uri"]),
            ("a jwks_uri that is not an absolute http(s) URL",
             {**backend, "jwks_uri": "ftp://keys.example.org/jwks.json"}, ["jwks_uri"]),
            ("client_credentials with a client secret",
             {**backend, "token_endpoint_auth_method": "client_secret_basic"},
             ["private_key_jwt"]),
            ("system/ scopes without client_credentials",
             {"grant_types": ["authorization_code"], "redirect_uris": [REDIRECT],
              "token_endpoint_auth_method": "private_key_jwt", "scope": "system/*.rs",
              "jwks": {"keys": [rsa_key.jwk]}}, ["client_credentials", "system/"]),
        ]
        for label, body, keywords in cases:
            response = self.http.post(f"{self.base}/oauth/register",
                                      json={"client_name": label, **body}, timeout=30)
            self.judge.refused(f"register refuses {label}", response, 400,
                               "invalid_client_metadata", keywords)

    # -- client_credentials --------------------------------------------------------------

    def backend_token(self, client, scope, jws=None, label=None):
        """A client_credentials token; checks the success answer fully."""
        label = label or f"client_credentials {scope}"
        response = self.post(self.token_endpoint, {"grant_type": "client_credentials",
                                                   "scope": scope, **client.auth(jws)})
        j = self.judge
        j.status(label, response, 200)
        body = response.json()
        j.check(f"{label}: access_token", bool(body.get("access_token")), str(body))
        j.equal(f"{label}: token_type", body.get("token_type"), "Bearer")
        expires_in = body.get("expires_in")
        j.check(f"{label}: 0 < expires_in <= 300",
                isinstance(expires_in, int) and 0 < expires_in <= 300, str(body))
        granted = set(str(body.get("scope", "")).split())
        j.check(f"{label}: scope granted within the request",
                granted and granted <= set(scope.split()), str(body))
        j.check(f"{label}: no refresh_token", "refresh_token" not in body, str(body))
        j.check(f"{label}: no patient", "patient" not in body, str(body))
        j.check(f"{label}: Cache-Control no-store",
                "no-store" in response.headers.get("Cache-Control", ""), str(response.headers))
        return body

    def search_all(self, label, query, token):
        """Every resource of a search, following the Bundle's next links."""
        url, found = f"{self.fhir}/{query}", []
        while url:
            response = self.http.get(url, timeout=30,
                                     headers={"Authorization": f"Bearer {token}"})
            self.judge.status(label, response, 200)
            bundle = response.json()
            found += [e["resource"] for e in bundle.get("entry", [])]
            url = next((link["url"] for link in bundle.get("link", [])
                        if link.get("relation") == "next"), None)
        return found

    def reads_across_patients(self, broad, lab, v1):
        j = self.judge
        token = self.backend_token(broad, "system/*.rs")["access_token"]
        patients = {p["id"] for p in self.search_all("system/*.rs: Patient search",
                                                     "Patient?_count=500", token)}
        j.check("system/*.rs: Patient search finds several patients", len(patients) >= 2,
                str(patients))
        observations = self.search_all("system/*.rs: Observation search without patient",
                                       "Observation?_count=500", token)
        subjects = {o.get("subject", {}).get("reference", "") for o in observations}
        j.equal("system/*.rs: Observations of every patient",
                subjects, {f"Patient/{p}" for p in patients})
        one = observations[0]
        read = self.get(f"Observation/{one['id']}", token)
        j.status("system/*.rs: read an Observation by id", read, 200)
        labs = {o["id"] for o in observations if LAB in categories(o)}
        j.check("some laboratory Observations", labs and labs != {o["id"] for o in observations})

        labs_only = self.search_all("system/*.rs: Observation?category=laboratory",
                                    f"Observation?category={LAB}&_count=500", token)
        j.equal("system/*.rs: category search across patients",
                {o["id"] for o in labs_only}, labs)

        lab_scope = f"system/Observation.rs?category={LAB}"
        lab_token = self.backend_token(lab, lab_scope)["access_token"]
        seen = self.search_all(f"{lab_scope}: Observation search",
                               "Observation?_count=500", lab_token)
        j.equal(f"{lab_scope}: exactly the laboratory Observations of all patients",
                {o["id"] for o in seen}, labs)
        j.check(f"{lab_scope}: entries span patients",
                len({o["subject"]["reference"] for o in seen}) >= 2)
        other = next(o for o in observations if LAB not in categories(o))
        read = self.get(f"Observation/{other['id']}", lab_token)
        j.check(f"{lab_scope}: a non-laboratory Observation is not readable",
                read.status_code in (403, 404), f"{read.status_code}: {read.text[:300]}")
        read = self.get(f"Patient/{next(iter(patients))}", lab_token)
        j.status(f"{lab_scope}: a Patient is not readable", read, 403)

        v1_scope = "system/Observation.read"
        v1_token = self.backend_token(v1, v1_scope)["access_token"]
        seen = self.search_all(f"{v1_scope}: Observation search", "Observation?_count=500",
                               v1_token)
        j.equal(f"{v1_scope}: every Observation", {o["id"] for o in seen},
                {o["id"] for o in observations})
        read = self.get(f"Patient/{next(iter(patients))}", v1_token)
        j.status(f"{v1_scope}: a Patient is not readable", read, 403)

        narrower = self.backend_token(broad, "system/Observation.rs")
        read = self.get(f"Patient/{next(iter(patients))}", narrower["access_token"])
        j.status("system/*.rs client asking for system/Observation.rs: no Patient", read, 403)

    def grant_errors(self, broad, lab):
        j = self.judge
        cc = {"grant_type": "client_credentials", "scope": "system/*.rs"}
        response = self.post(self.token_endpoint, {**cc, "grant_type": "not_a_grant_type",
                                                   **broad.auth()})
        j.refused("an invalid grant_type", response, 400, "unsupported_grant_type")
        response = self.post(self.token_endpoint, {
            **cc, "client_assertion_type": "not_an_assertion_type",
            "client_assertion": broad.assertion()})
        j.check("a wrong client_assertion_type: status 400 or 401",
                response.status_code in (400, 401), f"{response.status_code}: {response.text}")
        j.check("a wrong client_assertion_type: an OAuth error",
                json_of(response).get("error") in ("invalid_request", "invalid_client"),
                response.text)
        j.check("a wrong client_assertion_type: no token",
                "access_token" not in json_of(response), response.text)
        response = self.post(self.token_endpoint, {"grant_type": "client_credentials",
                                                   **broad.auth()})
        j.refused("client_credentials without scope", response, 400, "invalid_scope")
        response = self.post(self.token_endpoint, {**cc, "scope": "", **broad.auth()})
        j.refused("client_credentials with an empty scope", response, 400, "invalid_scope")
        response = self.post(self.token_endpoint, {**cc, **lab.auth()})
        j.refused("client_credentials beyond the registered scope", response, 400,
                  "invalid_scope")
        response = self.post(self.token_endpoint, cc)
        j.refused("client_credentials without client authentication", response, 401,
                  "invalid_client")
        response = self.post(self.token_endpoint, {**cc, "client_id": broad.id})
        j.refused("client_credentials with a bare client_id", response, 401, "invalid_client")

    # -- assertion refusals --------------------------------------------------------------

    def assertion_refusals(self, client):
        j = self.judge
        now = int(time.time())

        def refused(label, jws, keywords, extra=None):
            response = self.post(self.token_endpoint, {
                "grant_type": "client_credentials", "scope": client.scope,
                **client.auth(jws), **(extra or {})})
            j.refused(f"assertion {label}", response, 401, "invalid_client", keywords)

        used = client.assertion()
        self.backend_token(client, client.scope, used, f"{client.scope}: a fresh assertion")
        refused("replayed (same jti)", used, ["jti"])
        refused("with exp in the past", client.assertion(iat=now - 600, exp=now - 120),
                ["exp"])
        refused("with exp more than 5 minutes ahead", client.assertion(exp=now + 3600),
                ["exp"])
        refused("without exp", client.assertion(exp=None), ["exp"])
        refused("for another aud (the FHIR base)", client.assertion(aud=self.fhir), ["aud"])
        refused("without jti", client.assertion(jti=None), ["jti"])
        refused("with nbf in the future", client.assertion(nbf=now + 120), ["nbf"])
        refused("with sub not the client", client.assertion(sub="someone-else"), ["sub"])
        refused("with iss not the client",
                client.assertion(iss="someone-else"), ["iss", "client"])
        impostor = client.key.twin()
        refused("signed with another key (same kid)", client.assertion(key=impostor),
                ["signature", "key"])
        stranger = Key.rsa()
        refused("with an unknown kid", client.assertion(key=stranger), ["kid", "key"])
        refused("with typ other than JWT", client.assertion(headers={"typ": "at+jwt"}),
                ["typ"])
        refused("with a jku header for an inline key set",
                client.assertion(headers={"jku": "https://keys.example.org/jwks.json"}),
                ["jku"])
        header = {"alg": "HS256", "kid": client.key.kid, "typ": "JWT"}
        refused("HS256 with the public key as secret",
                unsigned(header, client.claims(), hs256_secret=client.key.public_pem()),
                ["alg", "HS256"])
        header = {"alg": "none", "kid": client.key.kid, "typ": "JWT"}
        refused("alg none", unsigned(header, client.claims()), ["alg", "none"])
        refused("whose client_id field differs from iss", client.assertion(),
                ["client_id", "iss"], {"client_id": "someone-else"})
        refused("not a JWS at all", "not-a-jws", [])
        refused("with aud the token endpoint plus a slash",
                client.assertion(aud=self.token_endpoint + "/"), ["aud"])
        refused("with exp as a string", client.assertion(exp=str(now + 120)), ["exp"])
        refused("whose iss and sub name no client",
                client.assertion(iss="no-such-client", sub="no-such-client"), ["iss", "client"])
        other_family = Key.ec("ES384") if client.key.alg.startswith("RS") else Key.rsa()
        refused("whose alg does not fit the kid's key",
                Key(other_family.alg, other_family.private, kid=client.key.kid)
                .sign(client.claims()), ["alg", "key"])
        response = self.post(self.token_endpoint, {
            "grant_type": "client_credentials", "scope": client.scope, **client.auth()},
            auth=(client.id, "a-guessed-secret"))
        j.refused("an assertion and HTTP Basic together", response, (400, 401),
                  "invalid_request" if response.status_code == 400 else "invalid_client")
        self.backend_token(client, client.scope, client.assertion(exp=int(time.time()) - 30),
                           "an assertion expired 30 s ago (within the 60 s leeway)")
        self.backend_token(client, client.scope, client.assertion(exp=int(time.time()) + 290),
                           "an assertion expiring in 290 s")
        response = self.post(self.token_endpoint, {
            "grant_type": "client_credentials", "scope": client.scope, "client_id": client.id,
            **client.auth()})
        j.status("an assertion with client_id equal to iss", response, 200)

    def key_sets(self, broad):
        """kid selects the key in a set of several; one key needs no kid; RS256 works."""
        j = self.judge
        self.backend_token(broad, broad.scope, broad.assertion(headers={"kid": None}),
                           "an assertion without kid for a one-key set")
        rsa_key, ec_key = Key.rsa("RS384"), Key.ec("ES384")
        body = {"client_name": "Backend Services check: two keys",
                "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "private_key_jwt", "scope": "system/Patient.rs",
                "jwks": {"keys": [rsa_key.jwk, ec_key.jwk]}}
        response = self.http.post(f"{self.base}/oauth/register", json=body, timeout=30)
        j.status("register a client with two keys", response, 201)
        both = Client(response.json()["client_id"], rsa_key, self.token_endpoint,
                      "system/Patient.rs")
        self.backend_token(both, both.scope, both.assertion(), "two keys: the RS384 kid")
        self.backend_token(both, both.scope, both.assertion(key=ec_key),
                           "two keys: the ES384 kid")
        response = self.post(self.token_endpoint, {
            "grant_type": "client_credentials", "scope": both.scope,
            **both.auth(both.assertion(key=ec_key, headers={"kid": None}))})
        j.refused("two keys: an assertion without kid", response, 401, "invalid_client",
                  ["kid"])
        rs256 = self.register("RS256, system/Patient.read", Key.rsa("RS256"),
                              scope="system/Patient.read")
        token = self.backend_token(rs256, rs256.scope)["access_token"]
        j.status("an RS256 client's token reads a Patient search",
                 self.get("Patient", token), 200)

    # -- introspection and revocation ----------------------------------------------------

    def introspection_and_revocation(self, client, other):
        j = self.judge
        body = self.backend_token(client, "system/*.rs", label="a token to introspect")
        token = body["access_token"]
        for audience in (self.token_endpoint, self.introspection_endpoint):
            response = self.post(self.introspection_endpoint, {
                "token": token, **client.auth(client.assertion(aud=audience))})
            label = f"introspection with an assertion for {audience}"
            j.status(label, response, 200)
            seen = response.json()
            j.equal(f"{label}: active", seen.get("active"), True)
            j.equal(f"{label}: client_id", seen.get("client_id"), client.id)
            j.equal(f"{label}: scope", seen.get("scope"), body["scope"])
            j.check(f"{label}: exp within 300 s",
                    isinstance(seen.get("exp"), int) and seen["exp"] <= time.time() + 305,
                    str(seen))
            for field in ("patient", "username"):
                j.check(f"{label}: no {field}", field not in seen, str(seen))
        response = self.post(self.introspection_endpoint, {"token": token, **other.auth()})
        j.equal("another client's introspection: inactive", json_of(response).get("active"),
                False)
        response = self.post(self.introspection_endpoint, {
            "token": token, **client.auth(client.assertion(aud=self.fhir))})
        j.refused("introspection with an assertion for another aud", response, 401,
                  "invalid_client", ["aud"])
        response = self.post(self.revocation_endpoint, {"token": token, **client.auth()})
        j.status("revocation with an assertion", response, 200)
        j.status("the revoked token reads nothing", self.get("Patient", token), 401)
        response = self.post(self.introspection_endpoint, {"token": token, **client.auth()})
        j.equal("the revoked token introspects inactive", json_of(response).get("active"),
                False)

    # -- jwks_uri and key rotation ------------------------------------------------------

    def key_rotation(self):
        j = self.judge
        keys = JwksServer()
        try:
            first = Key.ec("ES384")
            keys.keys = [first]
            client = self.register("jwks_uri", first, scope="system/Patient.rs",
                                   jwks_uri=keys.url)
            self.backend_token(client, "system/Patient.rs", label="jwks_uri: first key")
            j.check("jwks_uri: the server fetched the key set", keys.fetches >= 1)
            fetched = keys.fetches
            self.backend_token(client, "system/Patient.rs", label="jwks_uri: first key again")
            j.equal("jwks_uri: the key set is cached", keys.fetches, fetched)
            self.backend_token(client, "system/Patient.rs",
                               client.assertion(headers={"jku": keys.url}),
                               "jwks_uri: a jku header equal to the jwks_uri")
            response = self.post(self.token_endpoint, {
                "grant_type": "client_credentials", "scope": "system/Patient.rs",
                **client.auth(client.assertion(
                    headers={"jku": "http://127.0.0.1:9/other.json"}))})
            j.refused("jwks_uri: a jku header naming another URL", response, 401,
                      "invalid_client", ["jku"])

            second = Key.rsa("RS384")
            keys.keys = [second]
            fetched = keys.fetches
            # The server refetches for an unknown kid, but not within seconds of its last
            # fetch (a flood of unknown kids must not become a flood of fetches).
            time.sleep(max(0.0, keys.fetched_at + REFETCH_PAUSE - time.monotonic()))
            self.backend_token(client, "system/Patient.rs", client.assertion(key=second),
                               "jwks_uri: a rotated key (new kid) is accepted")
            j.check("jwks_uri: the server refetched for the new kid", keys.fetches > fetched,
                    f"{keys.fetches} fetches")
            response = self.post(self.token_endpoint, {
                "grant_type": "client_credentials", "scope": "system/Patient.rs",
                **client.auth(client.assertion(key=first))})
            j.refused("jwks_uri: the retired key is refused", response, 401, "invalid_client",
                      ["kid", "key"])
        finally:
            keys.close()

    # -- the authorization-code flow ---------------------------------------------------

    def authorization_code(self):
        j = self.judge
        key = Key.ec("ES384")
        response = self.http.post(f"{self.base}/oauth/register", timeout=30, json={
            "client_name": "Confidential asymmetric app (PyJWT)",
            "redirect_uris": [REDIRECT], "scope": APP_SCOPE,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [key.jwk]}})
        j.status("register a confidential asymmetric app", response, 201)
        registered = response.json()
        j.check("the asymmetric app has no client_secret", "client_secret" not in registered,
                str(registered))
        app = Client(registered["client_id"], key, self.token_endpoint, APP_SCOPE)

        verifier, challenge = html_forms.pkce()
        query = {"response_type": "code", "client_id": app.id, "redirect_uri": REDIRECT,
                 "scope": APP_SCOPE, "state": secrets.token_urlsafe(16), "aud": self.fhir,
                 "code_challenge": challenge, "code_challenge_method": "S256"}
        code = html_forms.sign_in_and_approve(j, self.base, query, USER, PASSWORD, PATIENT)
        exchange = {"grant_type": "authorization_code", "code": code,
                    "redirect_uri": REDIRECT, "code_verifier": verifier}

        response = self.post(self.token_endpoint, exchange, auth=(app.id, "a-guessed-secret"))
        j.refused("code exchange with a client secret (Basic)", response, 401,
                  "invalid_client")
        response = self.post(self.token_endpoint, {**exchange, "client_id": app.id,
                                                   "client_secret": "a-guessed-secret"})
        j.refused("code exchange with a client secret (post)", response, 401,
                  "invalid_client")
        response = self.post(self.token_endpoint, {**exchange, "client_id": app.id})
        j.refused("code exchange with a bare client_id", response, 401, "invalid_client")

        used = app.assertion()
        response = self.post(self.token_endpoint, {**exchange, **app.auth(used)})
        j.status("code exchange with an assertion", response, 200)
        tokens = response.json()
        j.equal("code exchange: patient", tokens.get("patient"), PATIENT)
        j.check("code exchange: a refresh_token", bool(tokens.get("refresh_token")),
                str(tokens))
        j.check("code exchange: Cache-Control no-store",
                "no-store" in response.headers.get("Cache-Control", ""))
        j.status("the app's token reads its patient",
                 self.get(f"Patient/{PATIENT}", tokens["access_token"]), 200)

        refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        response = self.post(self.token_endpoint, {**refresh, "client_id": app.id,
                                                   "client_secret": "a-guessed-secret"})
        j.refused("refresh with a client secret", response, 401, "invalid_client")
        response = self.post(self.token_endpoint, {**refresh, **app.auth(used)})
        j.refused("refresh with the exchange's assertion (replayed jti)", response, 401,
                  "invalid_client", ["jti"])
        response = self.post(self.token_endpoint, {
            **refresh, **app.auth(app.assertion(aud=self.fhir))})
        j.refused("refresh with an assertion for another aud", response, 401,
                  "invalid_client", ["aud"])
        response = self.post(self.token_endpoint, {**refresh, **app.auth()})
        j.status("refresh with an assertion", response, 200)
        renewed = response.json()
        j.check("refresh: a new access token",
                renewed.get("access_token") not in (None, tokens["access_token"]), str(renewed))
        j.status("the refreshed token reads the patient",
                 self.get(f"Patient/{PATIENT}", renewed["access_token"]), 200)

        response = self.post(self.introspection_endpoint, {
            "token": renewed["access_token"], **app.auth()})
        seen = json_of(response)
        j.equal("the app's token introspects active", seen.get("active"), True)
        j.equal("the app's token introspects with its patient", seen.get("patient"), PATIENT)

        response = self.post(self.token_endpoint, {
            "grant_type": "client_credentials", "scope": "patient/*.read", **app.auth()})
        j.refused("client_credentials for a client that did not register it", response, 400,
                  "unauthorized_client")


def categories(resource):
    return {coding.get("code") for category in resource.get("category", [])
            for coding in category.get("coding", [])}


def main():
    checks = Checks(sys.argv[1].rstrip("/"))
    checks.discovery()
    checks.registration_refusals()
    broad = checks.register("RS384, system/*.rs", Key.rsa("RS384"))
    lab = checks.register("ES384, laboratory only", Key.ec("ES384"),
                          scope=f"system/Observation.rs?category={LAB}")
    v1 = checks.register("ES256, v1 system/Observation.read", Key.ec("ES256"),
                         scope="system/Observation.read")
    checks.reads_across_patients(broad, lab, v1)
    checks.grant_errors(broad, lab)
    checks.assertion_refusals(broad)
    checks.assertion_refusals(lab)
    checks.key_sets(broad)
    checks.introspection_and_revocation(broad, lab)
    checks.key_rotation()
    checks.authorization_code()
    print(f"{checks.judge.passed} passed, 0 failed")


if __name__ == "__main__":
    main()
