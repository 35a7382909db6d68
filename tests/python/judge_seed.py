#!/usr/bin/env python3
"""Replay the seed notebook's first part against a smartnb server, the way its Python cells
do it (requests.post(json=...), time() floats, params=...), and judge every answer; then read
the metadata, the seed's Patient and search Bundles with fhirclient's R4 models in strict mode,
and with fhir.resources' R4B models when they are installed.

Usage: judge_seed.py BASE_URL        e.g. judge_seed.py http://localhost:9000
Exits 1 at the first failed check, saying which and why; ends with "N passed, 0 failed".
"""

import importlib
import sys
import uuid
from email.utils import parsedate_to_datetime
from pprint import pformat
from time import time

import requests
from judge import Judge  # noqa: E402

SEED_SCOPE = "launch/patient patient/*.read offline_access"
SEED_REDIRECT = "http://localhost:9001/authorized"
PATIENT_ID = "smart-1288992"
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"



def is_uuid4(text):
    try:
        return uuid.UUID(text).version == 4 and str(uuid.UUID(text)) == text
    except (TypeError, ValueError, AttributeError):
        return False


def unix(http_date):
    return parsedate_to_datetime(http_date).timestamp()


def seed_cells(judge, base):
    """Cells 1 to 7 of the seed notebook; returns (client, access_token)."""
    # In [1]: register
    data = {
        "client_name": "SMART Test Client",
        "redirect_uris": [SEED_REDIRECT],
        "scope": SEED_SCOPE,
    }
    response = requests.post(f"{base}/oauth/register", json=data)
    judge.status("register", response, 201)
    client = response.json()
    # In [2]: the registration as the seed prints it
    judge.check("register: client_id is a UUIDv4", is_uuid4(client.get("client_id")), pformat(client))
    judge.check("register: client_secret is a UUIDv4", is_uuid4(client.get("client_secret")), pformat(client))
    judge.equal("register: client_secret_expires_at", client.get("client_secret_expires_at"), 0)
    for field in ("client_name", "redirect_uris", "scope"):
        judge.equal(f"register: {field}", client.get(field), data[field])
    client_id = client["client_id"]

    # In [3]: a debug token
    data = {"client_id": client_id, "username": "daniel-adams", "patient_id": PATIENT_ID}
    started = time()
    response = requests.post(f"{base}/oauth/debug/token", json=data)
    judge.status("debug token", response, 200)
    tokens = response.json()
    judge.check("debug token: access_token and refresh_token",
                isinstance(tokens.get("access_token"), str) and isinstance(tokens.get("refresh_token"), str),
                pformat(tokens))
    access_token, refresh_token = tokens["access_token"], tokens["refresh_token"]

    # In [4]: introspect it
    response = requests.get(f"{base}/oauth/debug/introspect", params={"token": access_token})
    judge.status("introspect", response, 200)
    info = response.json()
    # The server keeps only a SHA-256 of each token, so it echoes the one it was asked about
    # and shows its partner as null.
    expected = {
        "access_token": access_token,
        "refresh_token": None,
        "active": True,
        "client_id": client_id,
        "scope": SEED_SCOPE,
        "security_labels": [],
        "token_type": "Bearer",
        "username": "daniel-adams",
    }
    for field, value in expected.items():
        judge.equal(f"introspect: {field}", info.get(field), value)
    judge.near("introspect: access_expires is in an hour", unix(info["access_expires"]), started + 3600, 5)
    judge.near("introspect: approval_expires is in a year", unix(info["approval_expires"]),
               started + 365 * 24 * 3600, 5)
    response = requests.get(f"{base}/oauth/debug/introspect", params={"token": refresh_token})
    by_refresh = response.json()
    judge.equal("introspect by refresh token", by_refresh,
                dict(info, access_token=None, refresh_token=refresh_token))

    # In [5]: custom lifetimes, with time() as a float
    approval = time() + 180 * 24 * 60 * 60
    data = {
        "client_id": client_id,
        "username": "daniel-adams",
        "patient_id": PATIENT_ID,
        "access_lifetime": 3 * 60 * 60,
        "approval_expires": approval,
    }
    token_response = requests.post(f"{base}/oauth/debug/token", json=data)
    judge.status("debug token with lifetimes", token_response, 200)
    access_token = token_response.json()["access_token"]
    introspect_response = requests.get(f"{base}/oauth/debug/introspect", params={"token": access_token})
    info = introspect_response.json()
    judge.near("lifetimes: access_expires is in 3 hours", unix(info["access_expires"]), time() + 3 * 3600, 5)
    judge.near("lifetimes: approval_expires is the time() sent", unix(info["approval_expires"]), approval, 1.5)

    # In [6]: no header
    response = requests.get(f"{base}/api/fhir/Patient/{PATIENT_ID}")
    judge.status("FHIR without a token", response, 401)
    judge.check("FHIR 401: WWW-Authenticate Bearer",
                response.headers.get("WWW-Authenticate", "").startswith("Bearer"), dict(response.headers))
    judge.equal("FHIR 401: OperationOutcome", response.json().get("resourceType"), "OperationOutcome")

    # In [7]: with the token
    headers = {"Authorization": f"Bearer {access_token}"}
    response = requests.get(f"{base}/api/fhir/Patient/{PATIENT_ID}", headers=headers)
    judge.status("FHIR with the token", response, 200)
    patient = response.json()
    judge.equal("Patient.gender", patient.get("gender"), "male")
    judge.equal("Patient.birthDate", patient.get("birthDate"), "1925-12-23")
    judge.equal("Patient.address", patient.get("address"), [{
        "city": "Tulsa", "country": "USA", "line": ["1 Hill AveApt 14"],
        "postalCode": "74117", "state": "OK", "use": "home",
    }])
    identifier = (patient.get("identifier") or [{}])[0]
    judge.equal("Patient.identifier system", identifier.get("system"), "http://hospital.smarthealthit.org")
    judge.equal("Patient.identifier value", identifier.get("value"), "1288992")
    judge.equal("Patient.identifier type", identifier.get("type", {}).get("coding", [{}])[0].get("code"), "MR")

    # The API page's "Open FHIR access"
    response = requests.get(f"{base}/api/open-fhir/Patient/{PATIENT_ID}")
    judge.status("open FHIR without a token", response, 200)
    judge.equal("open FHIR serves the same Patient", response.json(), patient)
    return client, access_token


def fhir_json(judge, base, path, token, params=None):
    response = requests.get(f"{base}/api/fhir{path}", params=params,
                            headers={"Authorization": f"Bearer {token}"} if token else {})
    judge.status(f"GET {path}", response, 200)
    judge.check(f"GET {path}: application/fhir+json",
                response.headers.get("Content-Type", "").startswith("application/fhir+json"),
                response.headers.get("Content-Type"))
    return response.json()


def strict_fhirclient(judge, name, json, resource_type):
    """Parse with fhirclient's R4 model for the type, strict=True."""
    module = importlib.import_module(f"fhirclient.models.{resource_type.lower()}")
    try:
        getattr(module, resource_type)(json, strict=True)
    except Exception as error:  # FHIRValidationError, or anything the model raises
        judge.check(f"fhirclient parses {name}", False, f"{type(error).__name__}: {error}")
    judge.check(f"fhirclient parses {name}", True)


def with_fhirclient(judge, base, client, token, documents):
    from fhirclient import client as fhir_client
    from fhirclient.models import observation, patient

    metadata, seed_patient, observations, everything = documents
    strict_fhirclient(judge, "the CapabilityStatement", metadata, "CapabilityStatement")
    strict_fhirclient(judge, "Patient/smart-1288992", seed_patient, "Patient")
    for name, bundle in (("the Observation search", observations), ("$everything", everything)):
        strict_fhirclient(judge, name, bundle, "Bundle")
        for entry in bundle.get("entry", []):
            resource = entry["resource"]
            label = f"{resource['resourceType']}/{resource['id']}"
            strict_fhirclient(judge, label, resource, resource["resourceType"])

    # Discovery as fhirclient does it: from the CapabilityStatement's oauth-uris only.
    settings = {
        "app_id": client["client_id"],
        "app_secret": client["client_secret"],
        "api_base": f"{base}/api/fhir",
        "redirect_uri": SEED_REDIRECT,
        "scope": SEED_SCOPE,
    }
    smart = fhir_client.FHIRClient(settings=settings)
    judge.equal("fhirclient: not ready before authorizing", smart.prepare(), False)
    auth = smart.server.auth
    judge.equal("fhirclient finds the authorize endpoint", auth._authorize_uri, f"{base}/oauth/authorize")
    judge.equal("fhirclient finds the token endpoint", auth._token_uri, f"{base}/oauth/token")
    judge.equal("fhirclient finds the register endpoint", auth._registration_uri, f"{base}/oauth/register")
    url = smart.authorize_url or ""
    judge.check("fhirclient's authorize URL names the FHIR base as aud",
                url.startswith(f"{base}/oauth/authorize?") and "aud=" in url, url)

    # With the debug token in hand, fhirclient reads and searches like an app would.
    auth.access_token = token
    judge.check("fhirclient: ready with a token", smart.ready)
    read = patient.Patient.read(PATIENT_ID, smart.server)
    judge.equal("fhirclient reads the seed Patient", read.birthDate.isostring, "1925-12-23")
    search = observation.Observation.where(struct={"patient": PATIENT_ID, "category": "laboratory"})
    labs = search.perform_resources(smart.server)
    judge.check("fhirclient searches laboratory Observations", len(labs) > 0)
    judge.check("every Observation found is laboratory and Daniel's", all(
        o.subject.reference == f"Patient/{PATIENT_ID}"
        and any(c.code == "laboratory" for cat in o.category for c in cat.coding)
        for o in labs))


def with_fhir_resources(judge, documents):
    try:
        from fhir.resources.R4B.bundle import Bundle
        from fhir.resources.R4B.capabilitystatement import CapabilityStatement
        from fhir.resources.R4B.patient import Patient
    except ImportError:
        print("fhir.resources is not installed: skipping its R4B models")
        return
    metadata, seed_patient, observations, everything = documents
    for name, model, json in (
        ("the CapabilityStatement", CapabilityStatement, metadata),
        ("Patient/smart-1288992", Patient, seed_patient),
        ("the Observation search", Bundle, observations),
        ("$everything", Bundle, everything),
    ):
        try:
            model.model_validate(json)
        except Exception as error:  # pydantic.ValidationError
            judge.check(f"fhir.resources R4B validates {name}", False, f"{type(error).__name__}: {error}")
        judge.check(f"fhir.resources R4B validates {name}", True)


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    base = sys.argv[1].rstrip("/")
    judge = Judge()
    client, token = seed_cells(judge, base)

    metadata = fhir_json(judge, base, "/metadata", None)
    judge.equal("metadata: fhirVersion", metadata.get("fhirVersion"), "4.0.1")
    security = metadata["rest"][0]["security"]
    oauth = next((e for e in security.get("extension", []) if e.get("url") == OAUTH_URIS), {})
    uris = {e["url"]: e.get("valueUri") for e in oauth.get("extension", [])}
    for name in ("authorize", "token", "register", "manage", "introspect", "revoke"):
        judge.check(f"metadata: oauth-uris {name} on the base", str(uris.get(name)).startswith(f"{base}/"),
                    pformat(uris))
    seed_patient = fhir_json(judge, base, f"/Patient/{PATIENT_ID}", token)
    observations = fhir_json(judge, base, "/Observation", token, params={"patient": PATIENT_ID})
    judge.check("the Observation search finds some", observations.get("total", 0) > 0, pformat(observations)[:500])
    everything = fhir_json(judge, base, f"/Patient/{PATIENT_ID}/$everything", token, params={"_count": 500})
    documents = (metadata, seed_patient, observations, everything)

    with_fhirclient(judge, base, client, token, documents)
    with_fhir_resources(judge, documents)
    print(f"{judge.passed} passed, 0 failed")


if __name__ == "__main__":
    main()
