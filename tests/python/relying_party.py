#!/usr/bin/env python3
"""Be an OpenID Connect relying party nobody here wrote: sign in through the server's own
HTML forms as each shipped user (a patient, a representative, a practitioner), then verify
every id_token with two maintained libraries, PyJWT (keys from the discovered jwks_uri by
PyJWKClient) and Authlib (its CodeIDToken claim rules), check iss, aud, exp, iat, nonce
and sub, read the fhirUser resource with the access token, compare introspection, and do
it all again after a refresh.

Usage: relying_party.py BASE_URL        e.g. relying_party.py http://localhost:9000
Exits 1 at the first failed check, saying which and why; ends with "N passed, 0 failed".
"""

import secrets
import sys
import warnings

import jwt
import requests

import html_forms
from html_forms import pkce

# Authlib 1.x announces that authlib.jose moves to its sibling joserfc in 2.0; the OpenID
# Connect claim rules used here (authlib.oidc.core) still build on it. Authlib installs an
# "always" filter for its warnings when authlib.deprecate loads, so ours goes in after.
import authlib.deprecate  # noqa: E402,F401

warnings.filterwarnings("ignore", message="authlib.jose module is deprecated")
from authlib.jose import JsonWebKey, JsonWebToken  # noqa: E402
from authlib.oidc.core import CodeIDToken  # noqa: E402
from judge import Judge  # noqa: E402

REDIRECT = "http://localhost:9001/authorized"
SCOPE = "openid fhirUser launch/patient patient/*.read offline_access"
PASSWORD = "demo-password"

# (user, patient chosen, fhirUser as a relative reference, its resource type, name)
PARTICIPANTS = [
    ("daniel-adams", "smart-1288992", "Patient/smart-1288992", "Daniel Adams"),
    ("daniel-adams", "smart-1032702", "RelatedPerson/related-daniel-for-amy", "Daniel Adams"),
    ("joseph-ross", "smart-1081332", "Patient/smart-1081332", "Joseph Ross"),
    ("dr-carter", "smart-1032702", "Practitioner/practitioner-carter", "Dr. Rose Carter"),
]



def sign_in_and_approve(judge, base, client_id, user, patient, nonce, state, challenge):
    """The participant's walk through the HTML forms; the code from the redirect."""
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": SCOPE,
        "state": state,
        "aud": f"{base}/api/fhir",
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }

    def says_who_you_are(page):
        judge.check(f"{user}: the consent page says who you are",
                    "who you are" in page.text.lower(), page.text[:300])

    return html_forms.sign_in_and_approve(judge, base, query, user, PASSWORD, patient,
                                          on_consent=says_who_you_are)


def verify_with_pyjwt(judge, label, id_token, jwks_client, issuer, client_id):
    key = jwks_client.get_signing_key_from_jwt(id_token)
    claims = jwt.decode(
        id_token, key.key, algorithms=["RS256"], audience=client_id, issuer=issuer,
        options={"require": ["iss", "sub", "aud", "exp", "iat"]},
    )
    header = jwt.get_unverified_header(id_token)
    judge.equal(f"{label}: alg", header.get("alg"), "RS256")
    judge.check(f"{label}: kid", bool(header.get("kid")), str(header))
    # A token with one byte of its signature changed must not verify.
    head, body, signature = id_token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    judge.raises(f"{label}: a tampered signature is refused", jwt.InvalidSignatureError,
                 lambda: jwt.decode(f"{head}.{body}.{flipped}", key.key, algorithms=["RS256"],
                                    audience=client_id, issuer=issuer))
    judge.raises(f"{label}: another audience is refused", jwt.InvalidAudienceError,
                 lambda: jwt.decode(id_token, key.key, algorithms=["RS256"],
                                    audience="someone-else", issuer=issuer))
    return claims


def verify_with_authlib(judge, label, id_token, jwks, issuer, client_id, nonce, access_token):
    # With the access token given, Authlib also checks at_hash.
    claims = JsonWebToken(["RS256"]).decode(
        id_token,
        key=JsonWebKey.import_key_set(jwks),
        claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": issuer}},
        claims_params={"nonce": nonce, "client_id": client_id, "access_token": access_token},
    )
    claims.validate(leeway=5)
    judge.passed += 1
    return dict(claims)


def main():
    base = sys.argv[1].rstrip("/")
    judge = Judge()
    http = requests.Session()

    config = http.get(f"{base}/.well-known/openid-configuration").json()
    issuer = config["issuer"]
    judge.equal("issuer is the base URL", issuer, base)
    for field in ["authorization_endpoint", "token_endpoint", "jwks_uri",
                  "response_types_supported", "subject_types_supported",
                  "id_token_signing_alg_values_supported"]:
        judge.check(f"openid-configuration has {field}", field in config, str(config))
    smart = http.get(f"{base}/.well-known/smart-configuration").json()
    judge.equal("smart-configuration names the same issuer", smart.get("issuer"), issuer)
    judge.check("sso-openid-connect", "sso-openid-connect" in smart["capabilities"])
    jwks = http.get(config["jwks_uri"]).json()
    judge.check("the JWKS has no private members",
                all(not ({"d", "p", "q", "dp", "dq", "qi"} & set(k)) for k in jwks["keys"]))
    jwks_client = jwt.PyJWKClient(config["jwks_uri"])

    app = http.post(f"{base}/oauth/register", json={
        "client_name": "Relying Party (PyJWT + Authlib)",
        "redirect_uris": [REDIRECT],
        "scope": SCOPE,
    }).json()
    client_id, secret = app["client_id"], app["client_secret"]

    for user, patient, reference, name in PARTICIPANTS:
        label = f"{user} sharing {patient}"
        nonce, state = secrets.token_urlsafe(24), secrets.token_urlsafe(16)
        verifier, challenge = pkce()
        code = sign_in_and_approve(judge, base, client_id, user, patient, nonce, state,
                                   challenge)
        reply = http.post(config["token_endpoint"], auth=(client_id, secret), data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        })
        judge.equal(f"{label}: token status", reply.status_code, 200)
        tokens = reply.json()
        judge.check(f"{label}: an id_token", "id_token" in tokens, str(tokens))

        claims = verify_with_pyjwt(judge, label, tokens["id_token"], jwks_client, issuer,
                                   client_id)
        judge.equal(f"{label}: nonce", claims.get("nonce"), nonce)
        judge.equal(f"{label}: sub", claims["sub"], user)
        judge.check(f"{label}: sub at most 255", 0 < len(claims["sub"]) <= 255)
        judge.equal(f"{label}: fhirUser", claims.get("fhirUser"),
                    f"{base}/api/fhir/{reference}")
        judge.equal(f"{label}: name", claims.get("name"), name)
        access = tokens["access_token"]
        verify_with_authlib(judge, label, tokens["id_token"], jwks, issuer, client_id, nonce,
                            access)
        # Authlib's rules must refuse a nonce the app did not send, and another access token.
        judge.raises(f"{label}: Authlib refuses another nonce", Exception,
                     lambda: verify_with_authlib(judge, label, tokens["id_token"], jwks,
                                                 issuer, client_id, "not-the-nonce", access))
        judge.raises(f"{label}: Authlib refuses another access token's at_hash", Exception,
                     lambda: verify_with_authlib(judge, label, tokens["id_token"], jwks,
                                                 issuer, client_id, nonce, access + "x"))

        read = http.get(claims["fhirUser"],
                        headers={"Authorization": f"Bearer {tokens['access_token']}"})
        judge.equal(f"{label}: fhirUser readable", read.status_code, 200)
        judge.equal(f"{label}: fhirUser type", read.json().get("resourceType"),
                    reference.split("/")[0])

        seen = http.post(config["introspection_endpoint"], auth=(client_id, secret),
                         data={"token": tokens["access_token"]}).json()
        for field in ["iss", "sub", "fhirUser"]:
            judge.equal(f"{label}: introspection {field}", seen.get(field), claims[field])

        renewed = http.post(config["token_endpoint"], auth=(client_id, secret), data={
            "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        }).json()
        again = verify_with_pyjwt(judge, f"{label} (refreshed)", renewed["id_token"],
                                  jwks_client, issuer, client_id)
        for field in ["iss", "sub", "aud", "fhirUser", "auth_time"]:
            judge.equal(f"{label}: refreshed {field}", again.get(field), claims.get(field))
        judge.check(f"{label}: refreshed without nonce", "nonce" not in again, str(again))
        judge.check(f"{label}: refreshed iat", again["iat"] >= claims["iat"], str(again))

    print(f"{judge.passed} passed, 0 failed")


if __name__ == "__main__":
    main()
