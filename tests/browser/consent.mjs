// A real browser walks smartnb's SMART authorization-code flow: Debian's Chromium, driven
// by playwright-core, signs in, picks a patient by clicking, approves on the consent page,
// and the answer is caught on its way to the app's redirect URI (a loopback port nobody
// listens on, intercepted, so no site is contacted). The app's side (registration, code
// exchange, FHIR read) is plain fetch. Screenshots of the three pages go to
// target/screenshots/.
//
// Usage: node tests/browser/consent.mjs http://localhost:PORT
// Prints "N passed, M failed" and exits non-zero when anything failed.

import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const base = (process.argv[2] || '').replace(/\/+$/, '');
if (!/^https?:\/\//.test(base)) {
  console.error('usage: node consent.mjs BASE_URL   (e.g. http://localhost:9000)');
  process.exit(2);
}
const fhirBase = `${base}/api/fhir`;
const here = path.dirname(fileURLToPath(import.meta.url));
const shots = path.resolve(here, '..', '..', 'target', 'screenshots');
mkdirSync(shots, { recursive: true });

const SCOPE = 'launch/patient patient/*.read offline_access';
const STATE = 'browser state: a b&c=d+e \u00e9\u2713';
const USER = 'daniel-adams';
const PATIENT = 'smart-1288992';
const PATIENT_NAME = 'Daniel X. Adams';
const APP_NAME = 'Browser Test App';

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

/** A loopback port that nothing listens on once this returns. */
function unusedLoopbackPort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

async function register(redirectUri) {
  const response = await fetch(`${base}/oauth/register`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ client_name: APP_NAME, redirect_uris: [redirectUri], scope: SCOPE }),
  });
  const body = await response.json();
  check('registration answers 201 with a client_id and secret', response.status === 201 && body.client_id && body.client_secret, JSON.stringify(body));
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
  check('the code exchanges for a Bearer token', response.status === 200 && body.token_type === 'Bearer' && body.access_token, JSON.stringify(body));
  check(`the token is for ${PATIENT}`, body.patient === PATIENT, body.patient);
  return body;
}

async function readPatient(accessToken) {
  const response = await fetch(`${fhirBase}/Patient/${PATIENT}`, { headers: { Authorization: `Bearer ${accessToken}` } });
  const body = await response.json();
  check('the FHIR API returns the patient for the token', response.status === 200 && body.id === PATIENT && body.birthDate === '1925-12-23', `${response.status} ${body.id}`);
}

async function walk(browser, client, redirectUri) {
  const context = await browser.newContext({ viewport: { width: 1024, height: 768 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  const consoleErrors = [];
  page.on('console', (message) => message.type() === 'error' && consoleErrors.push(message.text()));
  // The app's redirect URI: answered here, so nothing on the network is contacted.
  await page.route(`${new URL(redirectUri).origin}/**`, (route) => route.fulfill({
    status: 200, contentType: 'text/html', body: '<!doctype html><title>App</title><p>The app got its answer.</p>',
  }));

  const authorize = new URL(`${base}/oauth/authorize`);
  for (const [k, v] of Object.entries({
    response_type: 'code', client_id: client.client_id, redirect_uri: redirectUri, scope: SCOPE, state: STATE, aud: fhirBase,
  })) authorize.searchParams.set(k, v);

  await page.goto(authorize.toString());
  check('the authorize link shows the sign-in page', new URL(page.url()).pathname === '/login', page.url());
  await page.screenshot({ path: path.join(shots, 'login.png'), fullPage: true });
  await page.getByLabel('User name').fill(USER);
  await page.getByLabel('Password').fill('demo-password');
  await Promise.all([page.waitForURL(/\/oauth\/consent\?/), page.getByRole('button', { name: 'Sign in' }).click()]);

  const heading = await page.getByRole('heading', { level: 1 }).innerText();
  check('daniel-adams is asked whose records to share', /Whose records/.test(heading), heading);
  await page.screenshot({ path: path.join(shots, 'picker.png'), fullPage: true });
  await page.getByText('Amy V. Shaw').click();
  await page.getByText(PATIENT_NAME).click();
  check(`clicking ${PATIENT_NAME} selects that patient`, await page.locator(`input[name=patient][value=${PATIENT}]`).isChecked());
  await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Continue' }).click()]);
  await page.getByRole('button', { name: 'Approve' }).waitFor();

  const text = await page.locator('main').innerText();
  check('the consent page names the app', text.includes(APP_NAME));
  check('the consent page names the patient', text.includes(PATIENT_NAME));
  const years = await page.getByLabel('Share until').locator('option').allInnerTexts();
  check('share until offers 1, 2 and 3 years', years.length === 3 && /^1 year/.test(years[0]) && /^3 years/.test(years[2]), JSON.stringify(years));
  const boxes = page.locator('input[type=checkbox][name=category]');
  const count = await boxes.count();
  let allTicked = count > 0;
  for (let i = 0; i < count; i += 1) allTicked = allTicked && await boxes.nth(i).isChecked();
  check('every data category starts ticked', allTicked, `${count} checkboxes`);
  await page.screenshot({ path: path.join(shots, 'consent.png'), fullPage: true });

  const [answer] = await Promise.all([
    page.waitForRequest((request) => request.url().startsWith(redirectUri)),
    page.getByRole('button', { name: 'Approve' }).click(),
  ]);
  const returned = new URL(answer.url());
  check('Approve sends the browser to the redirect URI', `${returned.origin}${returned.pathname}` === redirectUri, answer.url());
  check('the state comes back exactly', returned.searchParams.get('state') === STATE, returned.searchParams.get('state'));
  const code = returned.searchParams.get('code');
  check('the redirect carries a code', Boolean(code));
  check('no script or style errors on the pages', consoleErrors.length === 0, consoleErrors.join(' | '));
  await context.close();
  return code;
}

async function main() {
  const port = await unusedLoopbackPort();
  const redirectUri = `http://127.0.0.1:${port}/callback`;
  const client = await register(redirectUri);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const code = await walk(browser, client, redirectUri);
    if (code) {
      const tokens = await exchange(client, code, redirectUri);
      if (tokens.access_token) await readPatient(tokens.access_token);
    }
  } finally {
    await browser.close();
  }
}

try {
  await main();
} catch (error) {
  check('the walk completes', false, error && error.stack ? error.stack : String(error));
}
console.log(`screenshots in ${shots}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
