// A real browser launches an app from smartnb's simulated EHR: Debian's Chromium, driven by
// playwright-core, signs in as dr-carter on /ehr, opens Joseph Ross's chart at one of his
// encounters, types the app's client id and an intent, and clicks Launch. The app (a small
// HTTP server here on a loopback port: a browser does not let a test intercept where a
// redirect leads) receives iss and launch on its registered launch URL and links on to the
// authorize page; the consent page
// names the EHR context, Approve sends the code to the app's redirect URI, and the token
// response carries the context chosen. Screenshots of /ehr and of the consent page go to
// target/screenshots/.
//
// Usage: node tests/browser/ehr_launch.mjs http://localhost:PORT
// Prints "N passed, M failed" and exits non-zero when anything failed.

import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const base = (process.argv[2] || '').replace(/\/+$/, '');
if (!/^https?:\/\//.test(base)) {
  console.error('usage: node ehr_launch.mjs BASE_URL   (e.g. http://localhost:9000)');
  process.exit(2);
}
const fhirBase = `${base}/api/fhir`;
const here = path.dirname(fileURLToPath(import.meta.url));
const shots = path.resolve(here, '..', '..', 'target', 'screenshots');
mkdirSync(shots, { recursive: true });

const SCOPE = 'launch openid fhirUser user/*.rs';
const STATE = 'ehr launch state';
const USER = 'dr-carter';
const PATIENT = 'smart-1081332';
const PATIENT_NAME = 'Joseph T. Ross';
const ENCOUNTER = 'smart-1081332-enc-2016-07';
const INTENT = 'reconcile-medications';
const APP_NAME = 'Browser EHR App';

let passed = 0;
let failed = 0;
function check(name, ok, detail = '') {
  if (ok) {
    passed += 1;
    console.log(`ok   ${name}`);
  } else {
    failed += 1;
    console.log(`FAIL ${name}${detail ? `: ${detail}` : ''}`);
  }
  return ok;
}

/** The app: answers its launch URL with a link on to the authorize request, and its
 * redirect URI with a page saying it got the answer; `seen` holds every URL asked. */
function startApp(linkFor) {
  const seen = [];
  const server = createServer((request, response) => {
    const url = new URL(request.url, 'http://127.0.0.1');
    seen.push(url);
    const body = url.pathname === '/launch'
      ? linkFor(url.searchParams.get('iss'), url.searchParams.get('launch'))
      : '<!doctype html><title>App</title><p>The app got its answer.</p>';
    response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    response.end(body);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({ server, seen, origin: `http://127.0.0.1:${server.address().port}` }));
  });
}

async function register(appOrigin) {
  const response = await fetch(`${base}/oauth/register`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      client_name: APP_NAME,
      redirect_uris: [`${appOrigin}/callback`],
      initiate_login_uri: `${appOrigin}/launch`,
      scope: SCOPE,
    }),
  });
  const body = await response.json();
  check('registration takes the launch URL', response.status === 201 && body.initiate_login_uri === `${appOrigin}/launch`, JSON.stringify(body));
  return body;
}

async function exchange(client, code, redirectUri) {
  const basic = Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret)}`).toString('base64');
  const response = await fetch(`${base}/oauth/token`, {
    method: 'POST',
    headers: { Authorization: `Basic ${basic}`, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri }),
  });
  const body = await response.json();
  check('the code exchanges for a Bearer token', response.status === 200 && body.token_type === 'Bearer', JSON.stringify(body));
  check('the token response carries the EHR patient', body.patient === PATIENT, body.patient);
  check('the token response carries the encounter chosen', body.encounter === ENCOUNTER, body.encounter);
  check('the token response carries the intent typed', body.intent === INTENT, body.intent);
  check('the EHR shows the banner: need_patient_banner is false', body.need_patient_banner === false, String(body.need_patient_banner));
}

/** The app's launch page: links on to the authorize request with the launch it received. */
function launchPage(client, appOrigin, iss, launch) {
  if (!client) return '<!doctype html><title>App</title><p>Not registered yet.</p>';
  const authorize = new URL(`${base}/oauth/authorize`);
  for (const [k, v] of Object.entries({
    response_type: 'code', client_id: client.client_id, redirect_uri: `${appOrigin}/callback`,
    scope: SCOPE, state: STATE, aud: iss, launch,
  })) authorize.searchParams.set(k, v);
  const href = authorize.toString().replace(/&/g, '&amp;').replace(/"/g, '&quot;');
  return `<!doctype html><title>App</title><p><a href="${href}">Sign in with the EHR</a></p>`;
}

async function walk(browser, client, app) {
  const appOrigin = app.origin;
  const context = await browser.newContext({ viewport: { width: 1024, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  const consoleErrors = [];
  page.on('console', (message) => message.type() === 'error' && consoleErrors.push(`${message.text()} (${message.location().url})`));
  await page.goto(`${base}/ehr`);
  check('/ehr asks to sign in first', new URL(page.url()).pathname === '/login', page.url());
  await page.getByLabel('User name').fill(USER);
  await page.getByLabel('Password').fill('demo-password');
  await Promise.all([page.waitForURL(/\/ehr$/), page.getByRole('button', { name: 'Sign in' }).click()]);
  check('sign-in returns to /ehr', new URL(page.url()).pathname === '/ehr', page.url());

  const patients = await page.locator('input[type=radio][name=patient]').count();
  check('dr-carter is offered all three patients', patients === 3, String(patients));
  await page.locator(`input[name=patient][value=${PATIENT}]`).check();
  await page.locator(`select[name="encounter-${PATIENT}"]`).selectOption(ENCOUNTER);
  await page.getByLabel('Registered app (client id)').fill(client.client_id);
  await page.getByLabel(/^Intent/).fill(INTENT);
  check('"the EHR shows the patient banner" starts ticked', await page.locator('input[name=ehr_banner]').isChecked());
  await page.screenshot({ path: path.join(shots, 'ehr.png'), fullPage: true });

  await Promise.all([
    page.waitForURL((url) => url.href.startsWith(`${appOrigin}/launch`)),
    page.getByRole('button', { name: 'Launch' }).click(),
  ]);
  const launched = app.seen.find((url) => url.pathname === '/launch') || null;
  check('Launch opens the app\'s launch URL', launched !== null, page.url());
  if (!launched) return null;
  check('the launch URL gets iss, the FHIR base', launched.searchParams.get('iss') === fhirBase, launched.searchParams.get('iss'));
  check('the launch URL gets a launch id', /^[0-9a-f]{32}$/.test(launched.searchParams.get('launch') || ''), launched.href);

  await Promise.all([page.waitForURL(/\/oauth\/consent\?/), page.getByRole('link', { name: 'Sign in with the EHR' }).click()]);
  await page.getByRole('button', { name: 'Approve' }).waitFor();
  const text = await page.locator('main').innerText();
  check('the consent page says the EHR opened it for the patient', text.includes(`Opened from the EHR for ${PATIENT_NAME}`), text);
  check('the consent page names the encounter and the intent', text.includes('2016-07-12') && text.includes(INTENT), text);
  await page.screenshot({ path: path.join(shots, 'ehr-consent.png'), fullPage: true });

  const [answer] = await Promise.all([
    page.waitForRequest((request) => request.url().startsWith(`${appOrigin}/callback`)),
    page.getByRole('button', { name: 'Approve' }).click(),
  ]);
  const returned = new URL(answer.url());
  check('Approve sends the browser to the app\'s redirect URI with the state', returned.searchParams.get('state') === STATE, answer.url());
  const code = returned.searchParams.get('code');
  check('the redirect carries a code', Boolean(code));
  check('no script or style errors on the pages', consoleErrors.length === 0, consoleErrors.join(' | '));
  await context.close();
  return code;
}

async function main() {
  let client = null;
  const app = await startApp((iss, launch) => launchPage(client, app.origin, iss, launch));
  client = await register(app.origin);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const code = await walk(browser, client, app);
    if (code) await exchange(client, code, `${app.origin}/callback`);
  } finally {
    await browser.close();
    app.server.close();
  }
}

try {
  await main();
} catch (error) {
  check('the launch completes', false, error && error.stack ? error.stack : String(error));
}
console.log(`screenshots in ${shots}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
