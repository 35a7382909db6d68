// What the Node checks share: counted checks that stop the run at the first failure, an app
// built on SMART Health IT's JavaScript client (npm `fhirclient`, its Node adapter) serving
// its launch URL and redirect URI on a loopback port, and a browser reduced to what the
// server's pages need (cookies per origin, manual redirects, forms read from the HTML).

import http from "node:http";
import smart from "fhirclient";

/** How many checks passed so far. */
export let passed = 0;

/** Count a check, or stop the run at the first one that fails. */
export function check(name, ok, detail = "") {
  if (!ok) {
    console.log(`FAIL: ${name}`);
    if (detail) console.log(`  ${detail}`);
    console.log(`${passed} passed, 1 failed`);
    process.exit(1);
  }
  passed += 1;
}

export function equal(name, actual, expected) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  check(name, a === e, `got ${a}, wanted ${e}`);
}

/** Run a step that must not throw; a throw is a failed check naming the step. */
export async function step(name, action) {
  try {
    const value = await action();
    passed += 1;
    return value;
  } catch (error) {
    check(name, false, `${error?.name ?? "Error"}: ${error?.message ?? error}`);
  }
}

/** fhirclient's storage contract, in memory: one app session. */
export class MemoryStorage {
  constructor() {
    this.values = new Map();
  }
  async get(key) {
    return this.values.get(key);
  }
  async set(key, value) {
    this.values.set(key, value);
    return value;
  }
  async unset(key) {
    return this.values.delete(key);
  }
}

/**
 * The app: a loopback HTTP server whose `/launch` is the launch URL the EHR opens (fhirclient
 * reads `iss` and `launch` from it) and whose `/authorized` is the redirect URI (fhirclient
 * reads `code` and `state` from it and exchanges the code).
 */
export function startApp(settings) {
  const storage = new MemoryStorage();
  const app = { clients: [], errors: [] };
  const server = http.createServer(async (req, res) => {
    const path = new URL(req.url, "http://app").pathname;
    try {
      if (path === "/launch") {
        const url = await smart(req, res, storage).authorize({
          clientId: settings.clientId,
          clientSecret: settings.clientSecret,
          redirectUri: settings.redirectUri,
          scope: settings.scope,
          noRedirect: true,
        });
        res.writeHead(302, { location: url });
        res.end();
      } else if (path === "/authorized") {
        app.clients.push(await smart(req, res, storage).ready());
        res.writeHead(200, { "content-type": "text/plain" });
        res.end("authorized");
      } else {
        res.writeHead(404);
        res.end();
      }
    } catch (error) {
      app.errors.push(error);
      res.writeHead(500, { "content-type": "text/plain" });
      res.end(String(error?.message ?? error));
    }
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      app.origin = `http://localhost:${server.address().port}`;
      app.close = () => new Promise((done) => server.close(done));
      resolve(app);
    });
  });
}

/** A browser reduced to what the pages need: cookies per origin, manual redirects. */
export class Browser {
  constructor() {
    this.jars = new Map();
  }
  async request(url, options = {}) {
    const origin = new URL(url).origin;
    const jar = this.jars.get(origin) ?? new Map();
    this.jars.set(origin, jar);
    const headers = { ...(options.headers ?? {}) };
    if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
    const response = await fetch(url, { ...options, headers, redirect: "manual" });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const at = pair.indexOf("=");
      jar.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim());
    }
    const text = await response.text();
    return { url, status: response.status, location: response.headers.get("location"), text };
  }
  get(url) {
    return this.request(url);
  }
  post(url, fields) {
    return this.request(url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(fields).toString(),
    });
  }
  /** Follow redirects from `page`: the page they end at, or `{redirectedTo}` at `stopAt`. */
  async follow(page, stopAt) {
    for (let hops = 0; page.status >= 300 && page.status < 400 && page.location; hops += 1) {
      if (hops >= 10) check(`at most 10 redirects from ${page.url}`, false, page.location);
      const target = new URL(page.location, page.url).href;
      if (stopAt && target.startsWith(stopAt)) return { redirectedTo: target };
      page = await this.get(target);
    }
    return page;
  }
}

/** A page's text from its first heading on, for failure messages. */
export function shown(page) {
  const at = page.text.indexOf("<h1");
  return page.text.slice(at < 0 ? 0 : at, (at < 0 ? 0 : at) + 600);
}

function decode(text) {
  return text
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&#x27;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
}

function attributes(tag) {
  const found = {};
  for (const m of tag.matchAll(/([a-zA-Z_:-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g)) {
    found[m[1].toLowerCase()] = decode(m[2] ?? m[3] ?? m[4] ?? "");
  }
  return found;
}

/**
 * The form of a page with this action: the fields a browser would submit (hidden, text and
 * password inputs, checked boxes and radios, each select's selected or first option).
 */
export function form(page, action) {
  for (const m of page.text.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    if (attributes(m[1]).action !== action) continue;
    const fields = [];
    for (const input of m[2].matchAll(/<input\b([^>]*)>/gi)) {
      const a = attributes(input[1]);
      const kind = (a.type ?? "text").toLowerCase();
      if (!a.name || kind === "submit") continue;
      if ((kind === "checkbox" || kind === "radio") && !("checked" in a)) continue;
      fields.push([a.name, a.value ?? (kind === "checkbox" ? "on" : "")]);
    }
    for (const select of m[2].matchAll(/<select\b([^>]*)>([\s\S]*?)<\/select>/gi)) {
      const name = attributes(select[1]).name;
      const options = [...select[2].matchAll(/<option\b([^>]*)>/gi)].map((o) => attributes(o[1]));
      const chosen = options.find((o) => "selected" in o) ?? options[0];
      if (name && chosen) fields.push([name, chosen.value ?? ""]);
    }
    return fields;
  }
  return null;
}

/** The page's fields with these replacing (or adding to) the page's own. */
export function fill(fields, replacements) {
  const names = new Set(replacements.map(([k]) => k));
  return [...fields.filter(([k]) => !names.has(k)), ...replacements];
}

/** An answer's status, or a failed check showing the answer. */
export function status(name, answer, expected) {
  check(`${name}: status ${expected}`, answer.status === expected,
    `got ${answer.status}: ${JSON.stringify(answer.body).slice(0, 500)}`);
}

/** A JSON answer's status, headers and body; an answer that is not JSON fails the run. */
export async function json(name, url, options = {}) {
  const response = await fetch(url, options);
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    check(`${name}: a JSON answer`, false, `status ${response.status}: ${text.slice(0, 500)}`);
  }
  return { status: response.status, headers: response.headers, body };
}

/** POST a JSON body; the answer as from `json`. */
export function postJson(name, url, body) {
  return json(name, url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}
