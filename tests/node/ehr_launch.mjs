#!/usr/bin/env node
// An EHR launch with SMART Health IT's JavaScript client (npm `fhirclient`, its Node adapter)
// as the app: a confidential client with a launch URL on a loopback port, a launch minted by
// the debug endpoint for dr-carter with Joseph Ross's chart open, the browser's walk through
// the server's sign-in and consent pages (a cookie jar over plain HTTP), then `ready()`; the
// context, the patient, the encounter and the user are read through the client, and again
// after `refresh()`.
//
// Usage: node ehr_launch.mjs BASE_URL        e.g. node ehr_launch.mjs http://localhost:9000
// Exits 1 at the first failed check, saying which and why; ends with "N passed, 0 failed".

import {
  Browser, check, equal, fill, form, json, passed, postJson, shown, startApp, status, step,
} from "./smart_app.mjs";

const SCOPE = "launch openid fhirUser patient/*.read user/*.read offline_access";
const PATIENT = "smart-1081332";
const USER = "dr-carter";
const PASSWORD = "demo-password";
const FHIR_USER = "Practitioner/practitioner-carter";
const INTENT = "reconcile-medications";

/** The patient's most recent Encounter by period.start, found with a debug token. */
async function latestEncounter(base, fhirBase, clientId) {
  const minted = await postJson("debug token", `${base}/oauth/debug/token`, {
    client_id: clientId,
    username: USER,
    patient_id: PATIENT,
    scope: "patient/*.read",
  });
  status("debug token", minted, 200);
  const auth = { authorization: `Bearer ${minted.body.access_token}` };
  const search = await json("Encounter search", `${fhirBase}/Encounter?patient=${PATIENT}`, {
    headers: auth,
  });
  status("Encounter search", search, 200);
  const encounters = (search.body.entry ?? []).map((e) => e.resource);
  check("the patient has Encounters", encounters.length > 0, JSON.stringify(search.body).slice(0, 300));
  const start = (e) => Date.parse(e.period?.start ?? "") || -Infinity;
  const latest = encounters.reduce((a, b) => (start(b) > start(a) ? b : a));
  // The Observations of the patient, every page, and the first that points at that Encounter.
  const observations = [];
  for (let url = `${fhirBase}/Observation?patient=${PATIENT}`; url;) {
    const page = await json("Observation search", url, { headers: auth });
    status("Observation search", page, 200);
    observations.push(...(page.body.entry ?? []).map((e) => e.resource));
    url = (page.body.link ?? []).find((l) => l.relation === "next")?.url;
  }
  const observation = observations.find((o) => o.encounter?.reference === `Encounter/${latest.id}`);
  check("an Observation points at the latest Encounter", observation !== undefined,
    `${observations.length} Observations, none with encounter Encounter/${latest.id}`);
  return { encounter: latest.id, observation: observation.id };
}

/** The browser's walk from the EHR's launch URL to the app's redirect URI. */
async function walk(app, launchUrl) {
  const browser = new Browser();
  const atApp = await browser.get(launchUrl);
  check("the app's launch URL redirects", atApp.status === 302 && atApp.location,
    `status ${atApp.status}: ${atApp.text.slice(0, 500)} ${app.errors.join("; ")}`);
  const authorize = new URL(atApp.location);
  equal("fhirclient's authorize URL carries the launch", authorize.searchParams.get("launch"),
    new URL(launchUrl).searchParams.get("launch"));
  equal("fhirclient's aud is the iss", authorize.searchParams.get("aud"),
    new URL(launchUrl).searchParams.get("iss"));
  equal("fhirclient sends S256 PKCE", authorize.searchParams.get("code_challenge_method"), "S256");

  let page = await browser.follow(atApp, `${app.origin}/authorized`);
  check("the sign-in page", page.text !== undefined && form(page, "/login") !== null,
    page.redirectedTo ?? `${page.status}: ${shown(page)}`);
  const login = form(page, "/login");
  equal("the sign-in page names the launch's user",
    login.find(([k]) => k === "username")?.[1], USER);
  page = await browser.follow(
    await browser.post(new URL("/login", page.url).href,
      fill(login, [["username", USER], ["password", PASSWORD]])),
    `${app.origin}/authorized`,
  );
  check("no patient picker under an EHR launch",
    page.text === undefined || form(page, "/oauth/consent/patient") === null);
  const consent = page.text === undefined ? null : form(page, "/oauth/consent");
  check("the consent page", consent !== null,
    page.redirectedTo ?? `${page.status}: ${shown(page)}`);
  check("the consent page names the launch patient",
    page.text.includes(`<code>${PATIENT}</code>`), shown(page));
  const done = await browser.follow(
    await browser.post(new URL("/oauth/consent", page.url).href,
      fill(consent, [["decision", "approve"]])),
    `${app.origin}/authorized`,
  );
  check("redirected to the app's redirect URI", done.redirectedTo !== undefined,
    `${done.status}: ${done.text?.slice(0, 500)}`);
  const back = new URL(done.redirectedTo);
  check("the redirect carries a code", back.searchParams.has("code"), done.redirectedTo);
  equal("the redirect carries fhirclient's state", back.searchParams.get("state"),
    authorize.searchParams.get("state"));
  const ready = await browser.get(done.redirectedTo);
  check("fhirclient's ready() completes", ready.status === 200 && app.clients.length === 1,
    `status ${ready.status}: ${ready.text.slice(0, 500)}`);
  return app.clients[0];
}

const CONTEXT_FIELDS = ["patient", "encounter", "fhirContext", "intent", "need_patient_banner",
  "smart_style_url"];

/** What the client knows from the token response, checked against what the EHR chose. */
async function context(label, client, base, chosen) {
  const tokens = client.state.tokenResponse;
  equal(`${label}: client.patient.id`, client.patient.id, PATIENT);
  equal(`${label}: client.encounter.id is the latest Encounter`, client.encounter.id, chosen.encounter);
  equal(`${label}: tokenResponse.encounter`, tokens.encounter, chosen.encounter);
  check(`${label}: fhirContext is a list`, Array.isArray(tokens.fhirContext), JSON.stringify(tokens));
  const references = tokens.fhirContext.map((c) => c.reference);
  for (const expected of [`Encounter/${chosen.encounter}`, `Observation/${chosen.observation}`, FHIR_USER]) {
    check(`${label}: fhirContext has ${expected}`, references.includes(expected),
      JSON.stringify(tokens.fhirContext));
  }
  check(`${label}: fhirContext entries are objects with a reference`,
    tokens.fhirContext.every((c) => typeof c === "object" && typeof c.reference === "string"),
    JSON.stringify(tokens.fhirContext));
  equal(`${label}: intent`, tokens.intent, INTENT);
  // Not asked for at the launch: an EHR launch's default is false (standalone's is true).
  equal(`${label}: need_patient_banner`, tokens.need_patient_banner, false);
  equal(`${label}: smart_style_url`, tokens.smart_style_url, `${base}/smart-style.json`);
  check(`${label}: the granted scope has launch`, /(^| )launch( |$)/.test(tokens.scope ?? ""), tokens.scope);
  check(`${label}: a refresh token`, typeof tokens.refresh_token === "string", JSON.stringify(tokens));

  const patient = await step(`${label}: client.patient.read()`, () => client.patient.read());
  equal(`${label}: the patient read`, [patient.resourceType, patient.id], ["Patient", PATIENT]);
  const encounter = await step(`${label}: client.encounter.read()`, () => client.encounter.read());
  equal(`${label}: the encounter read`, [encounter.resourceType, encounter.id],
    ["Encounter", chosen.encounter]);
  equal(`${label}: the encounter's subject`, encounter.subject?.reference, `Patient/${PATIENT}`);
  const observation = await step(`${label}: read the fhirContext Observation`,
    () => client.request(`Observation/${chosen.observation}`));
  equal(`${label}: the Observation's encounter`, observation.encounter?.reference,
    `Encounter/${chosen.encounter}`);
  equal(`${label}: client.user.fhirUser`, client.user.fhirUser, FHIR_USER);
  const user = await step(`${label}: client.user.read()`, () => client.user.read());
  equal(`${label}: the user read`, `${user.resourceType}/${user.id}`, FHIR_USER);
  const style = await json(`${label}: smart_style_url`, tokens.smart_style_url);
  status(`${label}: the style`, style, 200);
  check(`${label}: the style has color_background`, typeof style.body.color_background === "string",
    JSON.stringify(style.body));
}

async function main() {
  const base = (process.argv[2] ?? "").replace(/\/+$/, "");
  if (!/^https?:\/\//.test(base)) {
    console.error("usage: node ehr_launch.mjs BASE_URL");
    process.exit(2);
  }

  const smartConfig = await json("smart-configuration", `${base}/.well-known/smart-configuration`);
  for (const capability of ["launch-ehr", "context-ehr-patient", "context-ehr-encounter",
    "context-banner", "context-style", "client-confidential-symmetric"]) {
    check(`smart-configuration: ${capability}`,
      (smartConfig.body.capabilities ?? []).includes(capability),
      JSON.stringify(smartConfig.body.capabilities));
  }

  // The app listens first so that its registration names its real port.
  const settings = { scope: SCOPE };
  const app = await startApp(settings);
  try {
    settings.redirectUri = `${app.origin}/authorized`;
    const registered = await postJson("register", `${base}/oauth/register`, {
      client_name: "fhirclient (Node) EHR launch",
      redirect_uris: [settings.redirectUri],
      initiate_login_uri: `${app.origin}/launch`,
      scope: SCOPE,
      token_endpoint_auth_method: "client_secret_basic",
    });
    status("register", registered, 201);
    equal("register: initiate_login_uri echoed", registered.body.initiate_login_uri,
      `${app.origin}/launch`);
    settings.clientId = registered.body.client_id;
    settings.clientSecret = registered.body.client_secret;
    check("register: a client secret", typeof settings.clientSecret === "string",
      JSON.stringify(registered.body));

    const fhirBase = `${base}/api/fhir`;
    const chosen = await latestEncounter(base, fhirBase, settings.clientId);

    const launch = await postJson("launch", `${base}/oauth/debug/launch`, {
      patient_id: PATIENT,
      encounter_id: "auto",
      client_id: settings.clientId,
      intent: INTENT,
      fhir_context: [`Observation/${chosen.observation}`, FHIR_USER],
    });
    status("launch", launch, 200);
    check("launch: 32 hex", /^[0-9a-f]{32}$/.test(launch.body.launch ?? ""), JSON.stringify(launch.body));
    equal("launch: iss is the FHIR base", launch.body.iss, fhirBase);

    // The EHR opens the app's launch URL.
    const launchUrl = `${app.origin}/launch?iss=${encodeURIComponent(launch.body.iss)}` +
      `&launch=${encodeURIComponent(launch.body.launch)}`;
    const client = await walk(app, launchUrl);
    await context("after ready()", client, base, chosen);

    // Refresh: the context must come back in the refresh response itself. fhirclient merges
    // the answer into the token response it holds, so the context fields are dropped first.
    const before = client.state.tokenResponse.access_token;
    for (const field of CONTEXT_FIELDS) delete client.state.tokenResponse[field];
    await step("client.refresh()", () => client.refresh());
    check("refresh: a new access token", client.state.tokenResponse.access_token !== before);
    await context("after refresh()", client, base, chosen);

    // The launch was spent by the first authorize: a second run of the app with it fails.
    const again = await new Browser().get(launchUrl);
    const denied = await new Browser().follow(again, `${app.origin}/authorized`);
    const error = denied.redirectedTo ? new URL(denied.redirectedTo).searchParams.get("error") : null;
    equal("a spent launch is an invalid_request redirect", error, "invalid_request");
  } finally {
    await app.close();
  }
  console.log(`${passed} passed, 0 failed`);
}

main().catch((error) => {
  console.log(`FAIL: unexpected ${error?.name ?? "error"}: ${error?.stack ?? error}`);
  console.log(`${passed} passed, 1 failed`);
  process.exit(1);
});
