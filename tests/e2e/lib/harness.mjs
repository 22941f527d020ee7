// harness.mjs — starts metarelay and emulated relays (fakerelay) as child processes for
// the end-to-end tests, and offers the few helpers the tests share: admin calls,
// registering a relay (site + account + models check, then waiting until routable),
// fakerelay statistics, raw SSE reading and polling.
//
// Binaries come from METARELAY_BIN and FAKERELAY_BIN (default: the ASan build). Every
// process listens on 127.0.0.1 on a port the kernel picks; each metarelay gets a fresh
// temporary DATA_DIR. stop() sends SIGTERM, then SIGKILL after 5 s, and reports a
// non-zero exit (an ASan leak report exits non-zero) together with the child's stderr.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

import OpenAI from 'openai';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export const METARELAY_BIN = process.env.METARELAY_BIN || path.join(ROOT, 'build/asan/metarelay');
export const FAKERELAY_BIN = process.env.FAKERELAY_BIN || path.join(ROOT, 'build/asan/fakerelay');

export const AUTH_TOKEN = 'e2e-admin-token-5f1c9a';
export const PROXY_TOKEN = 'sk-e2e-proxy-token-8d2b7e';

const START_TIMEOUT_MS = Number(process.env.E2E_START_TIMEOUT_MS || 15000);
const KILL_AFTER_MS = 5000;
const KEEP_OUTPUT_BYTES = 1 << 20;

// Leak detection on, and sanitizer reports go to stderr, which is what we surface.
const SANITIZER_ENV = {
  ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=1:abort_on_error=0',
  UBSAN_OPTIONS: process.env.UBSAN_OPTIONS || 'print_stacktrace=1:halt_on_error=1',
};

let uniqueCounter = 0;
/** A name unique within this test process (for sites, request ids, …). */
export function unique(prefix = 'e2e') {
  uniqueCounter += 1;
  return `${prefix}-${process.pid}-${uniqueCounter}`;
}

function tail(text, max = 8000) {
  return text.length <= max ? text : `…${text.slice(text.length - max)}`;
}

/** One child process with its output captured and its exit observed. */
export class Child {
  constructor(label, bin, args, env) {
    this.label = label;
    this.stdout = '';
    this.stderr = '';
    this.exit = null; // {code, signal} once exited
    this.expectedExit = false; // set by stop(): an exit after that is not a crash
    this.lineWaiters = [];
    if (!fs.existsSync(bin)) {
      throw new Error(`${label}: binary ${bin} does not exist (build it, or set METARELAY_BIN / FAKERELAY_BIN)`);
    }
    this.proc = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.pid = this.proc.pid;
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
        for (const w of this.lineWaiters) w.onExit();
      });
    });
    this.proc.on('error', (err) => {
      this.stderr += `\n[spawn error] ${err.message}\n`;
    });
    this.proc.stdout.setEncoding('utf8');
    this.proc.stderr.setEncoding('utf8');
    this.proc.stdout.on('data', (d) => this.onData('stdout', d));
    this.proc.stderr.on('data', (d) => this.onData('stderr', d));
  }

  onData(stream, data) {
    this[stream] += data;
    if (this[stream].length > KEEP_OUTPUT_BYTES) this[stream] = this[stream].slice(-KEEP_OUTPUT_BYTES / 2);
    for (const w of [...this.lineWaiters]) w.check();
  }

  /** Output of both streams, for failure messages. */
  describe() {
    const status = this.exit ? `exited code=${this.exit.code} signal=${this.exit.signal}` : 'running';
    return `${this.label} (pid ${this.pid}, ${status})\n--- stderr ---\n${tail(this.stderr)}\n--- stdout ---\n${tail(this.stdout, 2000)}`;
  }

  /** Resolves with the first regex match in stdout or stderr; rejects on exit or timeout. */
  waitForOutput(regex, timeoutMs = START_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      const waiter = {
        check: () => {
          const m = regex.exec(this.stdout) || regex.exec(this.stderr);
          if (m) done(null, m);
        },
        onExit: () => done(new Error(`${this.label} exited before printing ${regex}\n${this.describe()}`)),
      };
      const timer = setTimeout(
        () => done(new Error(`${this.label} did not print ${regex} within ${timeoutMs} ms\n${this.describe()}`)),
        timeoutMs,
      );
      const done = (err, m) => {
        clearTimeout(timer);
        this.lineWaiters = this.lineWaiters.filter((w) => w !== waiter);
        if (err) reject(err);
        else resolve(m);
      };
      this.lineWaiters.push(waiter);
      waiter.check();
      if (this.exit) waiter.onExit();
    });
  }

  /** Throws with the child's output when it has died on its own. */
  assertAlive() {
    if (this.exit && !this.expectedExit) throw new Error(`${this.label} died unexpectedly\n${this.describe()}`);
  }

  /** SIGTERM, SIGKILL after KILL_AFTER_MS. Returns {code, signal, killed}. */
  async stop(signal = 'SIGTERM') {
    this.expectedExit = true;
    if (this.exit) return { ...this.exit, killed: false };
    this.proc.kill(signal);
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      this.proc.kill('SIGKILL');
    }, KILL_AFTER_MS);
    const res = await this.exited;
    clearTimeout(timer);
    return { ...res, killed };
  }
}

/** Stops children and throws one error naming every child that did not exit cleanly. */
export async function stopAll(children) {
  const problems = [];
  const results = await Promise.all(
    children.filter(Boolean).map(async (c) => {
      const wasDead = c.exit !== null && !c.expectedExit;
      const res = await c.stop();
      return { c, res, wasDead };
    }),
  );
  for (const { c, res, wasDead } of results) {
    if (wasDead) problems.push(`${c.label} had died during the tests\n${c.describe()}`);
    else if (res.killed) problems.push(`${c.label} ignored SIGTERM for ${KILL_AFTER_MS} ms and was killed\n${c.describe()}`);
    else if (res.code !== 0) problems.push(`${c.label} exited with code=${res.code} signal=${res.signal} on SIGTERM\n${c.describe()}`);
    if (c.dataDir) fs.rmSync(c.dataDir, { recursive: true, force: true });
  }
  if (problems.length) throw new Error(problems.join('\n\n'));
}

// ---------------------------------------------------------------------------------------
// fakerelay

/**
 * Starts one emulated relay. `models` always gets a unique probe model added
 * (`probe-<name>`) so addRelay() can tell when this relay's account is routable.
 */
export async function startFakeRelay(opts = {}) {
  const { name = unique('relay'), models = ['gpt-4o-mini'], fault, port: wantPort = 0, args = [] } = opts;
  const { key = `sk-relay-${name}` } = opts;
  const probe = `probe-${name}`;
  const all = models.includes(probe) ? models : [...models, probe];
  const argv = ['--port', String(wantPort), '--key', key, '--models', all.join(','), '--name', name];
  if (fault) argv.push('--fault', fault);
  // Stream pacing: metarelay does not forward x-fake-* headers, so a relay that must
  // stream slowly is started that way.
  if (opts.chunks !== undefined) argv.push('--chunks', String(opts.chunks));
  if (opts.chunkDelayMs !== undefined) argv.push('--chunk-delay-ms', String(opts.chunkDelayMs));
  argv.push(...args);
  const child = new Child(`fakerelay ${name}`, FAKERELAY_BIN, argv, { ...process.env, ...SANITIZER_ENV });
  const m = await child.waitForOutput(/listening (?:on )?(127\.0\.0\.1|[0-9.]+):(\d+)/);
  const port = Number(m[2]);
  return Object.assign(child, {
    opts: { ...opts, name, key, models: all },
    name,
    key,
    models: all,
    probeModel: probe,
    port,
    url: `http://127.0.0.1:${port}`,
    /** An OpenAI client talking to the relay directly (the reference for comparisons). */
    openai(opts = {}) {
      return new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: key, maxRetries: 0, timeout: 30000, ...opts });
    },
  });
}

/**
 * Stops a relay and starts it again on the same port with other options (e.g. a fault
 * that also breaks /v1/models, which must succeed while metarelay registers the relay).
 */
export async function restartFakeRelay(fr, changes = {}) {
  await fr.stop();
  return startFakeRelay({ ...fr.opts, port: fr.port, ...changes });
}

/** GET /_fake/stats of a relay, parsed. */
export async function fakeStats(fr) {
  const res = await fetch(`${fr.url}/_fake/stats`, { headers: { authorization: `Bearer ${fr.key}` } });
  if (res.status !== 200) throw new Error(`${fr.label}: /_fake/stats answered ${res.status}`);
  return res.json();
}

/** POST /_fake/reset of a relay. */
export async function fakeReset(fr) {
  const res = await fetch(`${fr.url}/_fake/reset`, { method: 'POST', headers: { authorization: `Bearer ${fr.key}` } });
  if (res.status >= 300) throw new Error(`${fr.label}: /_fake/reset answered ${res.status}`);
}

/** Depth-first search for the first value whose key matches `re`. */
export function findKey(obj, re, seen = new Set()) {
  if (!obj || typeof obj !== 'object' || seen.has(obj)) return undefined;
  seen.add(obj);
  for (const [k, v] of Object.entries(obj)) if (re.test(k)) return v;
  for (const v of Object.values(obj)) {
    const found = findKey(v, re, seen);
    if (found !== undefined) return found;
  }
  return undefined;
}

// The statistics' field names belong to fakerelay; these accessors keep the tests
// readable and in one place if the names change.

/** How many responses the relay saw the client close before they were complete. */
export function statClientClosed(stats) {
  const v = stats.client_aborts ?? findKey(stats, /client.?abort|client.?closed|closed.?by.?client|mid.?response/i);
  if (typeof v !== 'number') throw new Error(`no client-closed counter in fakerelay stats: ${JSON.stringify(stats)}`);
  return v;
}

/** Connections currently open on the relay. */
export function statOpenConnections(stats) {
  const v = stats.connections_open ?? findKey(stats, /^(connections_?open|open_?connections)$/i);
  if (typeof v !== 'number') throw new Error(`no open-connections counter in fakerelay stats: ${JSON.stringify(stats)}`);
  return v;
}

/** The last request the relay received: {headers, body} with body parsed when JSON. */
export function statLastRequest(stats) {
  const last = findKey(stats, /^last.?request$/i) ?? findKey(stats, /^last/i);
  if (!last || typeof last !== 'object') throw new Error(`no last request in fakerelay stats: ${JSON.stringify(stats)}`);
  let body = last.body ?? findKey(last, /body/i);
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      /* leave as text */
    }
  }
  const headers = last.headers ?? findKey(last, /headers/i) ?? {};
  return { headers, body, raw: last };
}

// ---------------------------------------------------------------------------------------
// metarelay

/**
 * Starts metarelay with a fresh DATA_DIR; `env` overrides (e.g. {MAX_BODY_MB: '1'}).
 * Returns the child with helpers: url(), admin(), openai(), proxyFetch().
 */
export async function startMetarelay(env = {}) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'metarelay-e2e-'));
  const fullEnv = {
    ...process.env,
    ...SANITIZER_ENV,
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    AUTH_TOKEN,
    PROXY_TOKEN,
    WORKERS: '2',
    LOG_LEVEL: process.env.E2E_LOG_LEVEL || 'info',
    ...env,
  };
  for (const k of Object.keys(fullEnv)) if (fullEnv[k] === undefined) delete fullEnv[k];
  const child = new Child('metarelay', METARELAY_BIN, ['serve'], fullEnv);
  child.dataDir = dataDir;
  let m;
  try {
    m = await child.waitForOutput(/listening on (127\.0\.0\.1|[0-9.]+):(\d+)/);
  } catch (err) {
    await child.stop('SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const port = Number(m[2]);
  const base = `http://127.0.0.1:${port}`;
  return Object.assign(child, {
    port,
    base,
    url: (p) => `${base}${p}`,
    /** An admin API call; returns {status, body, text, headers}. */
    async admin(method, p, body, { token = AUTH_TOKEN, rawBody } = {}) {
      const headers = {};
      if (token !== null) headers.authorization = `Bearer ${token}`;
      let payload;
      if (rawBody !== undefined) payload = rawBody;
      else if (body !== undefined) payload = JSON.stringify(body);
      if (payload !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(`${base}${p}`, { method, headers, body: payload });
      return readResponse(res);
    },
    /** A data-plane fetch with PROXY_TOKEN as Bearer unless headers say otherwise. */
    async proxyFetch(p, { method = 'POST', body, headers = {}, key = PROXY_TOKEN, signal } = {}) {
      const h = { ...headers };
      if (key !== null && !('authorization' in h)) h.authorization = `Bearer ${key}`;
      let payload = body;
      if (body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array)) payload = JSON.stringify(body);
      if (payload !== undefined && !('content-type' in h)) h['content-type'] = 'application/json';
      return fetch(`${base}${p}`, { method, headers: h, body: payload, signal });
    },
    openai(opts = {}) {
      return new OpenAI({ baseURL: `${base}/v1`, apiKey: PROXY_TOKEN, maxRetries: 0, timeout: 30000, ...opts });
    },
  });
}

/** Reads a fetch Response into {status, headers, text, body (JSON or undefined)}. */
export async function readResponse(res) {
  const text = await res.text();
  let body;
  try {
    body = text.length ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers, text, body };
}

/** The id of a created object, whether returned bare or wrapped ({data:{…}}, {site:{…}}). */
export function idOf(body) {
  if (!body || typeof body !== 'object') return undefined;
  return body.id ?? body.data?.id ?? body.site?.id ?? body.account?.id ?? body.item?.id;
}

/** The list inside a list answer (a bare array, or {items|data|<key>: [...]}) */
export function listOf(body, key) {
  if (Array.isArray(body)) return body;
  if (!body || typeof body !== 'object') return [];
  for (const k of [key, 'items', 'data']) if (k && Array.isArray(body[k])) return body[k];
  return [];
}

/** Polls `fn` every `intervalMs` until it returns a truthy value; throws after timeout. */
export async function waitFor(fn, { timeoutMs = 5000, intervalMs = 25, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${detail})`);
    }
    await sleep(intervalMs);
  }
}

/** Model ids metarelay currently routes (GET /v1/models). */
export async function routableModels(mr) {
  const res = await mr.proxyFetch('/v1/models', { method: 'GET' });
  const r = await readResponse(res);
  if (r.status !== 200) throw new Error(`GET /v1/models answered ${r.status}: ${r.text}`);
  return listOf(r.body, 'data').map((m) => m.id);
}

/**
 * Registers a relay with metarelay: a site, an account with the relay's key, a models
 * check; then waits until every model (and the relay's probe model) is routable.
 * `opts.platform` (default 'openai') and `opts.formats` (e.g. ['messages']; default: the
 * platform's) describe the site. Returns {siteId, accountId, check}.
 */
export async function addRelay(mr, fr, models = fr.models, opts = {}) {
  const { platform = 'openai', formats } = opts;
  const siteBody = { name: unique(fr.name), url: fr.url, platform };
  if (formats !== undefined) siteBody.formats = formats;
  const site = await mr.admin('POST', '/api/sites', siteBody);
  if (site.status !== 200 && site.status !== 201) throw new Error(`POST /api/sites → ${site.status} ${site.text}`);
  const siteId = idOf(site.body);
  const acct = await mr.admin('POST', '/api/accounts', { siteId, apiToken: fr.key });
  if (acct.status !== 200 && acct.status !== 201) throw new Error(`POST /api/accounts → ${acct.status} ${acct.text}`);
  const accountId = idOf(acct.body);
  const check = await mr.admin('POST', `/api/models/check/${accountId}`);
  if (check.status !== 200 || check.body?.success !== true) {
    throw new Error(`POST /api/models/check/${accountId} → ${check.status} ${check.text}`);
  }
  const want = [...new Set([...models, fr.probeModel].filter(Boolean))];
  await waitFor(
    async () => {
      const have = new Set(await routableModels(mr));
      return want.every((m) => have.has(m));
    },
    { timeoutMs: 5000, what: `models ${want.join(',')} to become routable` },
  );
  return { siteId, accountId, check: check.body };
}

/** Proxy-log rows (newest first as the API returns them); `query` e.g. {limit: 100}. */
export async function proxyLogs(mr, query = {}) {
  const q = new URLSearchParams({ limit: '200', ...query });
  const r = await mr.admin('GET', `/api/stats/proxy-logs?${q}`);
  if (r.status !== 200) throw new Error(`GET /api/stats/proxy-logs → ${r.status} ${r.text}`);
  return r.body;
}

// Usage-row fields whose name differs between the contract (attempt, firstByteMs) and
// Metapi's names (retryCount, firstByteLatencyMs); either is accepted.

/** The attempt number (1 = first channel tried) of a usage row; retryCount counts from 0. */
export function attemptOf(row) {
  if (row.attempt !== undefined) return row.attempt;
  return typeof row.retryCount === 'number' ? row.retryCount + 1 : undefined;
}

/** Milliseconds until the upstream's first byte, of a usage row. */
export function firstByteOf(row) {
  return row.firstByteMs ?? row.firstByteLatencyMs;
}

/** Waits until the usage rows of one request id satisfy `pred(rows)`; returns them. */
export async function logsFor(mr, requestId, pred = (rows) => rows.length > 0, timeoutMs = 3000) {
  return waitFor(
    async () => {
      const rows = listOf(await proxyLogs(mr), 'items').filter((r) => r.requestId === requestId);
      return pred(rows) ? rows : false;
    },
    { timeoutMs, what: `proxy-log rows of request ${requestId}` },
  );
}

// ---------------------------------------------------------------------------------------
// SSE

/** Splits SSE text into events: [{event, data}] (comments dropped). */
export function parseSSE(text) {
  const events = [];
  for (const block of text.replace(/\r\n/g, '\n').split('\n\n')) {
    let event;
    const data = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':') || line === '') continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length || event) events.push({ event, data: data.join('\n') });
  }
  return events;
}

/** JSON payloads of the data events of an OpenAI stream, without the [DONE] marker. */
export function sseJson(events) {
  return events.filter((e) => e.data && e.data !== '[DONE]').map((e) => JSON.parse(e.data));
}

/** A chat request body of about 200 bytes. */
export function chatBody(model, extra = {}) {
  return {
    model,
    messages: [
      { role: 'system', content: 'You are a terse assistant.' },
      { role: 'user', content: 'Say hello to the end-to-end test of metarelay, please.' },
    ],
    ...extra,
  };
}
