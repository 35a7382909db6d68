#!/usr/bin/env node
// Simulated faults as SMART Health IT's JavaScript client (npm `fhirclient`, its Node
// adapter) sees them: two apps launched from the EHR (launches minted by the debug
// endpoint), faults set for the first through POST /oauth/debug/simulate, then
// `client.request` and `client.refresh` must reject with the HttpError of each fault (status,
// the server's error in the message, Retry-After, Smartnb-Simulated) while the second app's
// requests go through; faults carried by a launch fail the app's authorize, its code
// exchange in `ready()`, or its first read.
//
// Usage: node faults.mjs BASE_URL        e.g. node faults.mjs http://localhost:9000
// Exits 1 at the first failed check, saying which and why; ends with "N passed, 0 failed".

import {
  Browser, check, equal, fill, form, json, passed, postJson, shown, startApp, status, step,
} from "./smart_app.mjs";

const SCOPE = "launch openid fhirUser patient/*.read offline_access";
const PATIENT = "smart-1081332";
const USER = "dr-carter";
const PASSWORD = "demo-password";
const HEADER = "smartnb-simulated";

/** Run a step that must fail; its error, or a failed check naming the step. */
async function rejects(name, action) {
  try {
    await action();
  } catch (error) {
    check(`${name} rejects`, true);
    return error;
  }
  check(`${name} rejects`, false, "it resolved");
  return undefined;
}

/** An HttpError of fhirclient with this status and these words in its message. */
function httpError(name, error, expected, words = []) {
  equal(`${name}: an HttpError`, error?.name, "HttpError");
  equal(`${name}: status`, error?.status, expected);
  for (const word of words) {
    check(`${name}: the message names ${word}`, String(error?.message).includes(word),
      String(error?.message));
  }
}

/** The Smartnb-Simulated header of a rejected request. */
function simulated(name, error, fault, remaining = "0") {
  equal(`${name}: Smartnb-Simulated`, error?.response?.headers?.get(HEADER),
    `${fault}; remaining=${remaining}`);
}

class Server {
  constructor(base) {
    this.base = base;
    this.fhir = `${base}/api/fhir`;
  }

  async simulate(clientId, fault, fields = {}) {
    const answer = await postJson(`simulate ${fault}`, `${this.base}/oauth/debug/simulate`, {
      client_id: clientId, fault, ...fields,
    });
    status(`simulate ${fault} for ${clientId}`, answer, 200);
    equal(`simulate ${fault}: listed last`, answer.body.faults?.at(-1)?.fault, fault);
    return answer.body.faults;
  }

  async faults(clientId) {
    const answer = await json("GET simulate",
      `${this.base}/oauth/debug/simulate?client_id=${encodeURIComponent(clientId)}`);
    status("GET /oauth/debug/simulate", answer, 200);
    return answer.body.faults;
  }

  async clear(clientId) {
    const answer = await json("DELETE simulate",
      `${this.base}/oauth/debug/simulate?client_id=${encodeURIComponent(clientId)}`,
      { method: "DELETE" });
    status("DELETE /oauth/debug/simulate", answer, 200);
    return answer.body;
  }

  /** A launch for this app with Joseph Ross's chart open, as the app's launch URL. */
  async launch(app, settings, fields = {}) {
    const minted = await postJson("launch", `${this.base}/oauth/debug/launch`, {
      patient_id: PATIENT, client_id: settings.clientId, ...fields,
    });
    status(`launch ${JSON.stringify(fields)}`, minted, 200);
    return `${app.origin}/launch?iss=${encodeURIComponent(minted.body.iss)}` +
      `&launch=${encodeURIComponent(minted.body.launch)}`;
  }

  /** An app with its own loopback server and registration. */
  async app(name) {
    const settings = { scope: SCOPE };
    const app = await startApp(settings);
    settings.redirectUri = `${app.origin}/authorized`;
    const registered = await postJson("register", `${this.base}/oauth/register`, {
      client_name: name,
      redirect_uris: [settings.redirectUri],
      initiate_login_uri: `${app.origin}/launch`,
      scope: SCOPE,
      token_endpoint_auth_method: "client_secret_basic",
    });
    status(`register ${name}`, registered, 201);
    settings.clientId = registered.body.client_id;
    settings.clientSecret = registered.body.client_secret;
    return { app, settings, id: settings.clientId };
  }
}

/**
 * The browser's walk from the app's launch URL until the app's redirect URI has been opened:
 * signs in and approves when the server asks. Returns what the redirect carried and the
 * client `ready()` made, or the error it threw.
 */
async function walk(app, launchUrl) {
  const seen = { clients: app.clients.length, errors: app.errors.length };
  const browser = new Browser();
  const atApp = await browser.get(launchUrl);
  check("the app's launch URL redirects", atApp.status === 302 && atApp.location,
    `status ${atApp.status}: ${atApp.text.slice(0, 300)} ${app.errors.join("; ")}`);
  const authorize = new URL(atApp.location);
  const back = `${app.origin}/authorized`;
  let page = await browser.follow(atApp, back);
  const login = page.redirectedTo ? null : form(page, "/login");
  if (login) {
    page = await browser.follow(await browser.post(new URL("/login", page.url).href,
      fill(login, [["username", USER], ["password", PASSWORD]])), back);
  }
  const consent = page.redirectedTo ? null : form(page, "/oauth/consent");
  if (consent) {
    page = await browser.follow(await browser.post(new URL("/oauth/consent", page.url).href,
      fill(consent, [["decision", "approve"]])), back);
  }
  check("back at the app's redirect URI", page.redirectedTo !== undefined,
    page.redirectedTo ?? `${page.status}: ${shown(page)}`);
  await browser.get(page.redirectedTo);
  const redirect = new URL(page.redirectedTo).searchParams;
  return {
    redirect,
    state: authorize.searchParams.get("state"),
    client: app.clients.length > seen.clients ? app.clients.at(-1) : undefined,
    error: app.errors.length > seen.errors ? app.errors.at(-1) : undefined,
  };
}

/** A launch that must end with a ready client. */
async function launched(server, who, fields = {}) {
  const done = await walk(who.app, await server.launch(who.app, who.settings, fields));
  check(`${who.settings.clientId}: ready() completes`, done.client !== undefined,
    `${done.error?.name}: ${done.error?.message}`);
  return done.client;
}

async function fhirFaults(server, first, second) {
  const a = await launched(server, first);
  const b = await launched(server, second);
  const patient = `Patient/${PATIENT}`;

  await server.simulate(first.id, "fhir_throttled");
  let error = await rejects("fhir_throttled: client.request", () => a.request(patient));
  httpError("fhir_throttled", error, 429, ["throttled"]);
  equal("fhir_throttled: Retry-After", error.response.headers.get("retry-after"), "2");
  simulated("fhir_throttled", error, "fhir_throttled");
  const read = await step("after fhir_throttled: client.request", () => a.request(patient));
  equal("after fhir_throttled: the patient", read.id, PATIENT);

  await server.simulate(first.id, "fhir_server_error", { times: 2 });
  for (const left of ["1", "0"]) {
    error = await rejects("fhir_server_error: client.request",
      () => a.request(`Observation?patient=${PATIENT}`));
    httpError(`fhir_server_error (${left} left)`, error, 500, ["OperationOutcome", "exception"]);
    simulated(`fhir_server_error (${left} left)`, error, "fhir_server_error", left);
  }
  const bundle = await step("after fhir_server_error: a search",
    () => a.request(`Observation?patient=${PATIENT}`));
  equal("after fhir_server_error: a Bundle", bundle.resourceType, "Bundle");

  // The second app goes on while the first has a fault until cleared.
  await server.simulate(first.id, "fhir_server_error", { times: 0 });
  error = await rejects("until cleared: the first app", () => a.request(patient));
  simulated("until cleared", error, "fhir_server_error", "until-cleared");
  const other = await step("the second app's client.request", () => b.request(patient));
  equal("the second app reads the patient", other.id, PATIENT);
  await step("the second app's client.refresh()", () => b.refresh());
  await step("the second app's client.request after its refresh", () => b.request(patient));
  equal("the second app has no faults", await server.faults(second.id), []);
  equal("clearing the first app's fault", (await server.clear(first.id)).cleared, 1);
  await step("the first app reads again", () => a.request(patient));

  // An expired token surfaces as a 401; fhirclient then ends its session.
  await server.simulate(first.id, "fhir_expired_token");
  error = await rejects("fhir_expired_token: client.request", () => a.request(patient));
  httpError("fhir_expired_token", error, 401, ["expired"]);
  const challenge = error.response.headers.get("www-authenticate") ?? "";
  check("fhir_expired_token: a Bearer challenge with invalid_token",
    challenge.startsWith("Bearer ") && challenge.includes('error="invalid_token"') &&
    /error_description="[^"]*expired/.test(challenge), challenge);
  simulated("fhir_expired_token", error, "fhir_expired_token");
  equal("fhir_expired_token: fhirclient cleared its tokens", a.state.tokenResponse, {});
  const b2 = await step("the second app reads on", () => b.request(patient));
  equal("the second app's patient", b2.id, PATIENT);
  return b;
}

async function refreshFaults(server, first, second, b) {
  const a = await launched(server, first);
  const kept = a.state.tokenResponse.refresh_token;

  await server.simulate(first.id, "token_expired_refresh");
  let error = await rejects("token_expired_refresh: client.refresh()", () => a.refresh());
  httpError("token_expired_refresh", error, 400, ["invalid_grant", "expired"]);
  simulated("token_expired_refresh", error, "token_expired_refresh");
  equal("fhirclient dropped the refused refresh token", a.state.tokenResponse.refresh_token,
    undefined);
  await step("the second app's refresh meanwhile", () => b.refresh());
  // The server kept it: an app that still holds it refreshes.
  a.state.tokenResponse.refresh_token = kept;
  const before = a.state.tokenResponse.access_token;
  await step("the refresh token was not destroyed: client.refresh()", () => a.refresh());
  check("a new access token", a.state.tokenResponse.access_token !== before);

  await server.simulate(first.id, "token_unavailable");
  const held = a.state.tokenResponse.refresh_token;
  error = await rejects("token_unavailable: client.refresh()", () => a.refresh());
  httpError("token_unavailable", error, 503, ["temporarily_unavailable"]);
  equal("token_unavailable: Retry-After", error.response.headers.get("retry-after"), "2");
  simulated("token_unavailable", error, "token_unavailable");
  a.state.tokenResponse.refresh_token = held;
  await step("after token_unavailable: client.refresh()", () => a.refresh());

  await server.simulate(first.id, "token_invalid_client");
  error = await rejects("token_invalid_client: client.refresh()", () => a.refresh());
  httpError("token_invalid_client", error, 401, ["invalid_client"]);
  simulated("token_invalid_client", error, "token_invalid_client");
  await step("the second app reads", () => b.request(`Patient/${PATIENT}`));
}

async function launchFaults(server, first, second) {
  // An authorize fault carried by the launch: the redirect's error reaches ready().
  let done = await walk(first.app,
    await server.launch(first.app, first.settings, { fault: "authorize_access_denied" }));
  equal("launch fault authorize_access_denied: the redirect's error",
    done.redirect.get("error"), "access_denied");
  equal("launch fault authorize_access_denied: the state", done.redirect.get("state"),
    done.state);
  check("launch fault authorize_access_denied: ready() rejects",
    done.client === undefined && String(done.error?.message).startsWith("access_denied"),
    String(done.error?.message));

  done = await walk(first.app,
    await server.launch(first.app, first.settings, { fault: "token_invalid_grant" }));
  check("launch fault token_invalid_grant: a code came back", done.redirect.has("code"),
    done.redirect.toString());
  httpError("launch fault token_invalid_grant: ready()", done.error, 400, ["invalid_grant"]);
  simulated("launch fault token_invalid_grant", done.error, "token_invalid_grant");

  const a = await launched(server, first, { fault: "fhir_server_error" });
  const error = await rejects("launch fault fhir_server_error: client.request",
    () => a.request(`Patient/${PATIENT}`));
  httpError("launch fault fhir_server_error", error, 500);
  simulated("launch fault fhir_server_error", error, "fhir_server_error");
  await step("the launch's fault was spent", () => a.request(`Patient/${PATIENT}`));

  const b = await launched(server, second);
  await step("the second app's launch went through", () => b.request(`Patient/${PATIENT}`));
}

async function main() {
  const base = (process.argv[2] ?? "").replace(/\/+$/, "");
  if (!/^https?:\/\//.test(base)) {
    console.error("usage: node faults.mjs BASE_URL");
    process.exit(2);
  }
  const server = new Server(base);
  const first = await server.app("fhirclient (Node): the app under test");
  const second = await server.app("fhirclient (Node): a second app");
  try {
    const b = await fhirFaults(server, first, second);
    await refreshFaults(server, first, second, b);
    await launchFaults(server, first, second);
    equal("no faults left for the first app", await server.faults(first.id), []);
    equal("none ever for the second", await server.faults(second.id), []);
  } finally {
    await first.app.close();
    await second.app.close();
  }
  console.log(`${passed} passed, 0 failed`);
}

main().catch((error) => {
  console.log(`FAIL: unexpected ${error?.name ?? "error"}: ${error?.stack ?? error}`);
  console.log(`${passed} passed, 1 failed`);
  process.exit(1);
});
