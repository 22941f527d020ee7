// routing.test.mjs — the routing engine end to end: every fault of the fakerelay catalogue
// in front of a healthy fallback (success through the fallback, or the client's own error
// for client faults), bounded attempts, no hang past the configured timeouts, never a
// truncated success; weighted split, cost priority, half-open trial and recovery, health
// across a restart, user routes through the admin API (glob, re:, mapping, alias), the
// decision API, sticky sessions, usage rows with failure kinds and estimated costs.
//
// Channel order is forced with user routes: the faulty channel at priority 0, the fallback
// at priority 1. Faults are chosen by the upstream model name (fakerelay's `fault-<kind>`
// models, always accepted), so one faulty relay serves every channel-scoped fault: each
// scenario has its own upstream model, hence its own channel health record.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  addRelay,
  attemptOf,
  chatBody,
  fakeReset,
  fakeStats,
  idOf,
  logsFor,
  readResponse,
  startFakeRelay,
  startMetarelay,
  statLastRequest,
  stopAll,
  unique,
  waitFor,
} from './lib/harness.mjs';

const FIRST_BYTE_SEC = 1;
const IDLE_SEC = 1;
const TOTAL_SEC = 2;
const COOLDOWN_BASE_SEC = 1;
const KEYWORD = 'kwbad-marker';

/** Registers a relay: a site speaking `formats`, an account, a models check. */
async function register(mr, fr, { formats = ['chat'], models = ['gpt-4o-mini'] } = {}) {
  const site = await mr.admin('POST', '/api/sites', { name: unique(fr.name), url: fr.url, platform: 'openai', formats });
  assert.ok(site.status === 200 || site.status === 201, `POST /api/sites → ${site.status} ${site.text}`);
  const siteId = idOf(site.body);
  const acct = await mr.admin('POST', '/api/accounts', { siteId, apiToken: fr.key });
  assert.ok(acct.status === 200 || acct.status === 201, `POST /api/accounts → ${acct.status} ${acct.text}`);
  const accountId = idOf(acct.body);
  const check = await mr.admin('POST', `/api/models/check/${accountId}`);
  assert.equal(check.status, 200, check.text);
  const want = [...models, fr.probeModel];
  await waitFor(
    async () => {
      const r = await readResponse(await mr.proxyFetch('/v1/models', { method: 'GET' }));
      const have = new Set((r.body?.data ?? []).map((m) => m.id));
      return want.every((m) => have.has(m));
    },
    { timeoutMs: 5000, what: `models of ${fr.name}` },
  );
  return { siteId, accountId };
}

/**
 * A user route over channels [{accountId, sourceModel, priority, weight}]; waits until the
 * decision API sees it with every channel (and gives the workers a moment to swap).
 */
async function makeRoute(mr, pattern, channels, extra = {}, probe = pattern) {
  const r = await mr.admin('POST', '/api/routes', { modelPattern: pattern, ...extra });
  assert.equal(r.status, 200, `POST /api/routes ${pattern} → ${r.status} ${r.text}`);
  const id = idOf(r.body);
  for (const ch of channels) {
    const c = await mr.admin('POST', `/api/routes/${id}/channels`, ch);
    assert.equal(c.status, 200, `POST /api/routes/${id}/channels → ${c.status} ${c.text}`);
  }
  await waitFor(
    async () => {
      const d = await decision(mr, probe);
      return d.route?.id === id && d.candidates.length === (channels.length || d.candidates.length);
    },
    { timeoutMs: 5000, what: `route ${pattern} to be published` },
  );
  await sleep(100); // the workers swap the snapshot from their mailbox
  return id;
}

async function decision(mr, model) {
  const r = await mr.admin('GET', `/api/routes/decision?model=${encodeURIComponent(model)}`);
  assert.equal(r.status, 200, r.text);
  return r.body;
}

/** One chat request through metarelay (raw fetch); {status, body, text, rid, ms}. */
async function chat(mr, model, extra = {}, headers = {}) {
  const t0 = Date.now();
  const res = await mr.proxyFetch('/v1/chat/completions', { body: chatBody(model, extra), headers });
  const r = await readResponse(res);
  return { ...r, rid: res.headers.get('x-request-id'), ms: Date.now() - t0 };
}

/** The usage rows of a request, oldest attempt first, once `n` rows (or a success) exist. */
async function rowsOf(mr, rid, n) {
  const rows = await logsFor(mr, rid, (rs) => (n ? rs.length >= n : rs.some((r) => r.status === 'success')), 5000);
  return rows.sort((a, b) => attemptOf(a) - attemptOf(b));
}

/** A client that sees a stream: the text, whether it ended cleanly, and the error if any. */
async function streamOutcome(mr, model) {
  const t0 = Date.now();
  let text = '';
  let finish = null;
  let error = null;
  try {
    const stream = await mr.openai().chat.completions.create(chatBody(model, { stream: true }));
    for await (const c of stream) {
      text += c.choices?.[0]?.delta?.content ?? '';
      finish = c.choices?.[0]?.finish_reason ?? finish;
    }
  } catch (err) {
    error = err;
  }
  return { text, finish, error, ms: Date.now() - t0 };
}

describe('routing: failure classification and failover', () => {
  const children = [];
  let mr;
  let prim; // the faulty relay: every fault-<kind> model
  let fb; // the healthy fallback
  let quota; // a relay whose credential runs out of quota
  let kw; // a relay whose answers contain the error keyword
  let once; // 500 for its first POST, then fine (half-open trial and recovery)
  let flap; // alternately fails 2 requests and serves 2
  let P, F, Q, K, O, FL; // their account ids

  before(async () => {
    mr = await startMetarelay({
      PROXY_FIRST_BYTE_TIMEOUT_SEC: String(FIRST_BYTE_SEC),
      PROXY_IDLE_TIMEOUT_SEC: String(IDLE_SEC),
      PROXY_TOTAL_TIMEOUT_SEC: String(TOTAL_SEC),
      PROXY_MAX_CHANNEL_ATTEMPTS: '3',
      TOKEN_ROUTER_FAILURE_COOLDOWN_BASE_SEC: String(COOLDOWN_BASE_SEC),
      TOKEN_ROUTER_FAILURE_COOLDOWN_MAX_SEC: '8',
      PROXY_ERROR_KEYWORDS: `  ,${KEYWORD}, another-marker`,
      PROXY_EMPTY_CONTENT_FAIL: '1',
    });
    children.push(mr);
    const both = ['--formats', 'chat,messages'];
    [prim, fb, quota, kw, once, flap] = await Promise.all([
      startFakeRelay({ name: unique('prim'), args: [...both, '--retry-after', '30', '--delay-ms', '3000'] }),
      startFakeRelay({ name: unique('fb'), args: both }),
      startFakeRelay({ name: unique('quota') }),
      startFakeRelay({ name: unique(KEYWORD) }),
      startFakeRelay({ name: unique('once'), args: ['--fault', 'slow-first-byte', '--delay-ms', '3000', '--fail-first', '2'] }),
      startFakeRelay({ name: unique('flap'), args: ['--flap-period', '2'] }),
    ]);
    children.push(prim, fb, quota, kw, once, flap);
    P = (await register(mr, prim, { formats: ['chat', 'messages'] })).accountId;
    F = (await register(mr, fb, { formats: ['chat', 'messages'] })).accountId;
    Q = (await register(mr, quota)).accountId;
    K = (await register(mr, kw)).accountId;
    O = (await register(mr, once)).accountId;
    FL = (await register(mr, flap)).accountId;
  });

  after(async () => {
    await stopAll(children);
  });

  /** A route `name`: the faulty channel (upstream `faultModel`) first, the fallback second. */
  async function faultRoute(name, faultModel, account = P) {
    return makeRoute(mr, name, [
      { accountId: account, sourceModel: faultModel, priority: 0 },
      { accountId: F, sourceModel: 'gpt-4o-mini', priority: 1 },
    ]);
  }

  /** Fails on the primary, succeeds on the fallback: exactly two rows. Returns the failed row. */
  async function assertFailover(r, { status, kind } = {}) {
    assert.equal(r.status, 200, r.text);
    assert.match(r.body.choices[0].message.content, new RegExp(`Hello from ${fb.name}`));
    const rows = await rowsOf(mr, r.rid, 2);
    assert.equal(rows.length, 2, JSON.stringify(rows));
    const [failed, ok] = rows;
    assert.equal(failed.status, 'failed');
    assert.equal(attemptOf(failed), 1);
    assert.equal(ok.status, 'success');
    assert.equal(ok.accountId, F);
    assert.equal(attemptOf(ok), 2);
    assert.ok(failed.errorMessage, 'a failed attempt says why');
    assert.ok(failed.routeId > 0 && failed.routeChannelId > 0, JSON.stringify(failed));
    if (status !== undefined) assert.equal(failed.httpStatus, status);
    if (kind) assert.equal(failed.failureKind, kind, JSON.stringify(failed));
    return failed;
  }

  test('429 with Retry-After → fallback; the channel cools for the provider\'s 30 s', async () => {
    await faultRoute('sc-429', 'fault-429');
    await assertFailover(await chat(mr, 'sc-429'), { status: 429, kind: 'rate_limit' });
    const d = await decision(mr, 'sc-429');
    const c = d.candidates.find((x) => x.accountId === P);
    assert.equal(c.excluded, true, JSON.stringify(c));
    assert.ok(c.cooldownMs > 25000 && c.cooldownMs <= 30000, `cooldown ${c.cooldownMs} ms`);
    assert.equal(c.cooldownHard, true);
    // the next request goes straight to the fallback: one attempt
    const r = await chat(mr, 'sc-429');
    assert.equal(r.status, 200);
    assert.equal((await rowsOf(mr, r.rid)).length, 1);
  });

  test('429 without Retry-After → fallback; the channel cools for the backoff base', async () => {
    await faultRoute('sc-429-bare', 'fault-429-no-retry-after');
    await assertFailover(await chat(mr, 'sc-429-bare'), { status: 429, kind: 'rate_limit' });
    const c = (await decision(mr, 'sc-429-bare')).candidates.find((x) => x.accountId === P);
    assert.ok(c.cooldownMs <= COOLDOWN_BASE_SEC * 1000, `cooldown ${c.cooldownMs} ms`);
    assert.equal(c.cooldownHard, false);
  });

  test('503 always → fallback, every time, within the attempt budget', async () => {
    await faultRoute('sc-503', 'fault-503');
    await assertFailover(await chat(mr, 'sc-503'), { status: 503, kind: 'server_error' });
  });

  test('reset before headers → fallback', async () => {
    await faultRoute('sc-reset', 'fault-reset');
    const failed = await assertFailover(await chat(mr, 'sc-reset'));
    assert.ok(!failed.httpStatus, JSON.stringify(failed));
  });

  test('no response at all → first-byte timeout → fallback, no hang', async () => {
    await faultRoute('sc-silence', 'fault-silence');
    const r = await chat(mr, 'sc-silence');
    const failed = await assertFailover(r, { kind: 'timeout' });
    assert.match(failed.errorMessage, /time/i);
    assert.ok(r.ms >= FIRST_BYTE_SEC * 1000 - 100 && r.ms < FIRST_BYTE_SEC * 1000 + 2500, `${r.ms} ms`);
  });

  test('slow first byte (3 s) past the 1 s first-byte timeout → fallback', async () => {
    await faultRoute('sc-slow', 'fault-slow-first-byte');
    const r = await chat(mr, 'sc-slow');
    await assertFailover(r, { kind: 'timeout' });
    assert.ok(r.ms < FIRST_BYTE_SEC * 1000 + 2500, `${r.ms} ms`);
  });

  test('500 → fallback; the failure row carries the upstream text', async () => {
    await faultRoute('sc-500', 'fault-500');
    const failed = await assertFailover(await chat(mr, 'sc-500'), { status: 500, kind: 'server_error' });
    assert.match(failed.errorMessage, /injected fault 500/);
  });

  test('malformed 200 body (JSON cut in half) → fallback, never passed on', async () => {
    await faultRoute('sc-badjson', 'fault-malformed');
    await assertFailover(await chat(mr, 'sc-badjson'), { kind: 'server_error' });
  });

  test('empty 200 with PROXY_EMPTY_CONTENT_FAIL=1 → fallback', async () => {
    await faultRoute('sc-empty', 'fault-empty');
    const failed = await assertFailover(await chat(mr, 'sc-empty'));
    assert.match(failed.errorMessage, /without content/);
  });

  test('a 200 containing a PROXY_ERROR_KEYWORDS keyword → fallback', async () => {
    await faultRoute('sc-keyword', 'gpt-4o-mini', K);
    const r = await chat(mr, 'sc-keyword');
    assert.equal(r.status, 200);
    assert.doesNotMatch(r.text, new RegExp(KEYWORD));
    const rows = await rowsOf(mr, r.rid, 2);
    assert.equal(rows[0].accountId, K);
    assert.match(rows[0].errorMessage, /error keyword "kwbad-marker"/);
  });

  test('quota (403 insufficient_user_quota) → fallback; the credential cools, not just the channel', async () => {
    await makeRoute(mr, 'sc-quota', [
      { accountId: Q, sourceModel: 'fault-quota', priority: 0 },
      { accountId: F, sourceModel: 'gpt-4o-mini', priority: 1 },
    ]);
    const r = await chat(mr, 'sc-quota');
    assert.equal(r.status, 200);
    const rows = await rowsOf(mr, r.rid, 2);
    assert.equal(rows[0].failureKind, 'quota');
    assert.equal(rows[0].httpStatus, 403);
    // another model of the same credential is cooling now too (credential scope)
    const d = await decision(mr, 'gpt-4o-mini');
    const c = d.candidates.find((x) => x.accountId === Q);
    assert.ok(c, JSON.stringify(d));
    assert.equal(c.excluded, true, JSON.stringify(c));
    assert.equal(c.cooldownScope, 'credential');
    assert.equal(c.cooldownKind, 'quota');
    // other credentials are untouched
    assert.equal(d.candidates.find((x) => x.accountId === F).excluded, false);
  });

  test('context-length 400 reaches the client verbatim, one attempt, channel not counted', async () => {
    await faultRoute('sc-ctx', 'fault-context-length');
    const before = (await fakeStats(fb)).requests_total;
    const r = await chat(mr, 'sc-ctx');
    assert.equal(r.status, 400, r.text);
    assert.equal(r.body.error.code, 'context_length_exceeded');
    assert.match(r.body.error.message, /^This model's maximum context length is 128000 tokens/);
    const rows = await rowsOf(mr, r.rid, 1);
    await sleep(200);
    assert.equal((await rowsOf(mr, r.rid, 1)).length, 1, 'no second attempt');
    assert.equal(rows[0].failureKind, 'client_error');
    assert.equal((await fakeStats(fb)).requests_total, before, 'the fallback was never asked');
    const c = (await decision(mr, 'sc-ctx')).candidates.find((x) => x.accountId === P);
    assert.equal(c.excluded, false);
    assert.equal(c.state, 'healthy');
  });

  test('content-filter 400 reaches the client as a 400, one attempt', async () => {
    await faultRoute('sc-filter', 'fault-content-filter');
    const r = await chat(mr, 'sc-filter');
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'content_filter');
    assert.equal((await rowsOf(mr, r.rid, 1)).length, 1);
  });

  test('Claude Code\'s mid-conversation system-role probe: the 400 text verbatim, never failed over', async () => {
    await makeRoute(mr, 'sc-claude', [
      { accountId: P, sourceModel: 'gpt-4o-mini', priority: 0 },
      { accountId: F, sourceModel: 'gpt-4o-mini', priority: 1 },
    ]);
    const res = await mr.proxyFetch('/v1/messages', {
      headers: { 'anthropic-version': '2023-06-01' },
      body: {
        model: 'sc-claude',
        max_tokens: 64,
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'hello' },
          { role: 'system', content: 'probe' },
          { role: 'user', content: 'again' },
        ],
      },
    });
    const r = await readResponse(res);
    assert.equal(r.status, 400, r.text);
    assert.equal(r.body.type, 'error');
    assert.match(r.body.error.message, /^messages\.2\.role: Unexpected role "system"\. The Messages API accepts a top-level `system` parameter/);
    const rows = await rowsOf(mr, res.headers.get('x-request-id'), 1);
    await sleep(200);
    assert.equal((await rowsOf(mr, res.headers.get('x-request-id'), 1)).length, 1);
    assert.equal(rows[0].accountId, P);
  });

  test('every channel failing: bounded to PROXY_MAX_CHANNEL_ATTEMPTS, a 502 naming them', async () => {
    await makeRoute(mr, 'sc-bounded', ['a', 'b', 'c', 'd'].map((s, i) => ({ accountId: P, sourceModel: `fault-500-${s}`, priority: i })));
    const r = await chat(mr, 'sc-bounded');
    assert.equal(r.status, 502, r.text);
    assert.match(r.body.error.message, /All 3 upstream channels failed/);
    await sleep(200);
    assert.equal((await rowsOf(mr, r.rid, 3)).length, 3);
  });

  test('PROXY_TOTAL_TIMEOUT_SEC is a deadline across attempts, not per attempt', async () => {
    // Three silent channels, each given up after the 1 s first-byte timeout: per attempt
    // that would take 3 s; the 2 s request deadline stops it after the second attempt.
    await makeRoute(mr, 'sc-deadline', ['a', 'b', 'c'].map((s, i) => ({ accountId: P, sourceModel: `fault-silence-${s}`, priority: i })));
    const r = await chat(mr, 'sc-deadline');
    assert.equal(r.status, 504, r.text);
    assert.match(r.body.error.message, /PROXY_TOTAL_TIMEOUT_SEC/);
    assert.ok(r.ms >= TOTAL_SEC * 1000 - 100 && r.ms < TOTAL_SEC * 1000 + 700, `${r.ms} ms`);
    await sleep(200);
    assert.equal((await rowsOf(mr, r.rid, 2)).length, 2);
  });

  test('stream cut after the commit point → the SDK throws, never a clean finish', async () => {
    await faultRoute('sc-cut', 'fault-cut');
    const o = await streamOutcome(mr, 'sc-cut');
    assert.ok(o.error, `a cut stream ended cleanly: ${JSON.stringify(o)}`);
    assert.equal(o.finish, null);
  });

  test('stream stall after the commit point → idle timeout → the SDK throws, no hang', async () => {
    await faultRoute('sc-stall', 'fault-stall');
    const o = await streamOutcome(mr, 'sc-stall');
    assert.ok(o.error, `a stalled stream ended cleanly: ${JSON.stringify({ ...o, error: undefined })}`);
    assert.ok(o.ms < IDLE_SEC * 1000 + 2500, `${o.ms} ms`);
  });

  test('malformed chunk after the commit point → the SDK throws', async () => {
    await faultRoute('sc-malformed', 'fault-malformed');
    const o = await streamOutcome(mr, 'sc-malformed');
    assert.ok(o.error, 'a malformed stream was taken as complete');
  });

  test('missing [DONE] after a finished answer → completed for the client', async () => {
    await faultRoute('sc-nodone', 'fault-no-done');
    const res = await mr.proxyFetch('/v1/chat/completions', { body: chatBody('sc-nodone', { stream: true }) });
    const text = await res.text();
    assert.equal(res.status, 200);
    assert.match(text, /"finish_reason":"stop"/);
    assert.match(text, /data: \[DONE\]\n\n$/);
    const o = await streamOutcome(mr, 'sc-nodone');
    assert.equal(o.error, null);
    assert.equal(o.finish, 'stop');
  });

  test('a cooled channel gets one half-open trial at a time, then comes back', async () => {
    // `once`: slow-first-byte (→ timeout) for its first 2 POSTs, then fine.
    await makeRoute(mr, 'sc-halfopen', [
      { accountId: O, sourceModel: 'gpt-4o-mini', priority: 0 },
      { accountId: F, sourceModel: 'gpt-4o-mini', priority: 1 },
    ]);
    let r = await chat(mr, 'sc-halfopen'); // once: POST 1 times out → fallback
    assert.equal(r.status, 200);
    assert.equal((await rowsOf(mr, r.rid, 2)).length, 2);
    await waitFor(async () => (await decision(mr, 'sc-halfopen')).candidates.find((x) => x.accountId === O).excluded === false, {
      timeoutMs: 5000,
      what: 'the cooldown to end',
    });
    // Half-open: eight concurrent requests; exactly one is the trial (POST 2: times out again).
    const before = (await fakeStats(once)).requests_total;
    const all = await Promise.all(Array.from({ length: 8 }, () => chat(mr, 'sc-halfopen')));
    for (const x of all) assert.equal(x.status, 200, x.text);
    assert.equal((await fakeStats(once)).requests_total - before, 1, 'one trial only');
    // The next trial (after a longer backoff) succeeds and the channel is back.
    await waitFor(
      async () => {
        const x = await chat(mr, 'sc-halfopen');
        return x.status === 200 && x.body.choices[0].message.content.includes(`Hello from ${once.name}`);
      },
      { timeoutMs: 8000, intervalMs: 200, what: 'the channel to come back' },
    );
    r = await chat(mr, 'sc-halfopen');
    assert.match(r.body.choices[0].message.content, new RegExp(`Hello from ${once.name}`));
    assert.equal((await decision(mr, 'sc-halfopen')).candidates.find((x) => x.accountId === O).state, 'healthy');
  });

  test('a flapping primary: every request succeeds, at most two attempts each', async () => {
    await makeRoute(mr, 'sc-flap', [
      { accountId: FL, sourceModel: 'gpt-4o-mini', priority: 0 },
      { accountId: F, sourceModel: 'gpt-4o-mini', priority: 1 },
    ]);
    let failovers = 0;
    for (let i = 0; i < 10; i++) {
      const r = await chat(mr, 'sc-flap');
      assert.equal(r.status, 200, r.text);
      const rows = await rowsOf(mr, r.rid);
      assert.ok(rows.length <= 2, JSON.stringify(rows));
      if (rows.length === 2) failovers++;
      await sleep(150);
    }
    assert.ok(failovers >= 1, 'the primary never failed');
  });
});

describe('routing: selection, routes, stickiness and persistence', () => {
  const children = [];
  let mr;
  let w1, w2;
  let A1, A2;
  let dataDir;

  before(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'metarelay-routing-'));
    mr = await startMetarelay({ DATA_DIR: dataDir, ROUTING_HEALTH_SAVE_SEC: '1' });
    children.push(mr);
    [w1, w2] = await Promise.all([
      startFakeRelay({ name: unique('w1'), models: ['gpt-4o-mini', 'gpt-4o', '*'] }),
      startFakeRelay({ name: unique('w2'), models: ['gpt-4o-mini', 'gpt-4o', '*'] }),
    ]);
    children.push(w1, w2);
    A1 = (await register(mr, w1, { models: ['gpt-4o-mini', 'gpt-4o'] })).accountId;
    A2 = (await register(mr, w2, { models: ['gpt-4o-mini', 'gpt-4o'] })).accountId;
  });

  after(async () => {
    await stopAll(children);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  /** Sends `n` tiny non-stream requests, `conc` at a time; returns the per-relay counts. */
  async function spray(model, n, conc = 16) {
    await Promise.all([fakeReset(w1), fakeReset(w2)]);
    let next = 0;
    const worker = async () => {
      while (next < n) {
        next++;
        const res = await mr.proxyFetch('/v1/chat/completions', {
          body: { model, messages: [{ role: 'user', content: 'x' }], max_tokens: 1 },
        });
        assert.equal(res.status, 200);
        await res.arrayBuffer();
      }
    };
    await Promise.all(Array.from({ length: conc }, worker));
    const [s1, s2] = await Promise.all([fakeStats(w1), fakeStats(w2)]);
    return [s1.requests_by_path['/v1/chat/completions'] ?? 0, s2.requests_by_path['/v1/chat/completions'] ?? 0];
  }

  test('a 3:1 weight split over 4,000 requests lands within ±3 %', async () => {
    await makeRoute(mr, 'split-model', [
      { accountId: A1, sourceModel: 'gpt-4o-mini', weight: 30 },
      { accountId: A2, sourceModel: 'gpt-4o-mini', weight: 10 },
    ]);
    const [a, b] = await spray('split-model', 4000);
    assert.equal(a + b, 4000);
    const share = a / 4000;
    assert.ok(Math.abs(share - 0.75) <= 0.03, `share of the weight-30 channel: ${(share * 100).toFixed(1)} %`);
  });

  test('cost priority: the cheaper channel takes the traffic; usage rows carry the cost', async () => {
    let r = await mr.admin('PUT', `/api/accounts/${A1}`, { unitCost: 10 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.unitCost ?? r.body.data?.unitCost, 10);
    r = await mr.admin('PUT', `/api/accounts/${A2}`, { unitCost: 1 });
    assert.equal(r.status, 200, r.text);
    await waitFor(async () => (await decision(mr, 'gpt-4o')).candidates.every((c) => c.costSource === 'manual'), {
      what: 'manual unit costs in the snapshot',
    });
    await sleep(100);
    const d = await decision(mr, 'gpt-4o');
    const cheap = d.candidates.find((c) => c.accountId === A2);
    assert.ok(cheap.probability > 0.85, JSON.stringify(d.candidates));
    const [a, b] = await spray('gpt-4o', 400);
    assert.ok(b / (a + b) > 0.8, `cheaper channel got ${b} of ${a + b}`);
    // the estimated cost of a request: unit cost × tokens / 1M
    const one = await chat(mr, 'gpt-4o');
    const [row] = await rowsOf(mr, one.rid);
    const unit = row.accountId === A2 ? 1 : 10;
    assert.ok(row.totalTokens > 0);
    assert.ok(Math.abs(row.estimatedCost - (unit * row.totalTokens) / 1e6) < 1e-12, JSON.stringify(row));
    await mr.admin('PUT', `/api/accounts/${A1}`, { unitCost: null });
    await mr.admin('PUT', `/api/accounts/${A2}`, { unitCost: null });
  });

  test('site globalWeight is accepted and shown', async () => {
    const sites = await mr.admin('GET', '/api/sites');
    const site = (sites.body.items ?? sites.body.data ?? sites.body)[0];
    const r = await mr.admin('PUT', `/api/sites/${site.id}`, { globalWeight: 2.5 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.globalWeight ?? r.body.data?.globalWeight, 2.5);
    const bad = await mr.admin('PUT', `/api/sites/${site.id}`, { globalWeight: 0 });
    assert.equal(bad.status, 400);
    await mr.admin('PUT', `/api/sites/${site.id}`, { globalWeight: 1 });
  });

  test('glob route: the relay sees the requested name', async () => {
    await makeRoute(mr, 'globtest-*', [{ accountId: A1 }], {}, 'globtest-abc');
    const r = await chat(mr, 'globtest-abc');
    assert.equal(r.status, 200, r.text);
    assert.match(r.body.choices[0].message.content, new RegExp(`Hello from ${w1.name}`));
    const last = statLastRequest(await fakeStats(w1));
    assert.equal(last.body.model, 'globtest-abc');
  });

  test('re: route with a model mapping: the relay sees the mapped name', async () => {
    await makeRoute(mr, 're:^retest-[0-9]+$', [{ accountId: A2 }], { modelMapping: { 'retest-*': 'gpt-4o-mini' } }, 'retest-42');
    const r = await chat(mr, 'retest-42');
    assert.equal(r.status, 200, r.text);
    assert.match(r.body.choices[0].message.content, new RegExp(`Hello from ${w2.name}`));
    assert.equal(statLastRequest(await fakeStats(w2)).body.model, 'gpt-4o-mini');
    assert.equal((await chat(mr, 'retest-x')).status, 404);
    const d = await decision(mr, 'retest-7');
    assert.equal(d.route.kind, 'regex');
    assert.equal(d.candidates[0].upstreamModel, 'gpt-4o-mini');
  });

  test('alias (displayName) of an exact route: the relay sees the real model', async () => {
    await makeRoute(mr, 'gpt-4o', [], { displayName: 'my-alias' }, 'my-alias');
    const r = await chat(mr, 'my-alias');
    assert.equal(r.status, 200, r.text);
    const relay = r.body.choices[0].message.content.includes(w1.name) ? w1 : w2;
    assert.equal(statLastRequest(await fakeStats(relay)).body.model, 'gpt-4o');
  });

  test('the decision API explains: probabilities, order, state, reasons', async () => {
    const d = await decision(mr, 'split-model');
    assert.equal(d.route.modelPattern, 'split-model');
    assert.equal(d.candidates.length, 2);
    const sum = d.candidates.reduce((s, c) => s + c.probability, 0);
    assert.ok(Math.abs(sum - 1) < 1e-6, `probabilities sum to ${sum}`);
    const heavy = d.candidates.find((c) => c.weight === 30);
    assert.ok(heavy.probability > 0.6 && heavy.probability < 0.9, JSON.stringify(heavy));
    for (const c of d.candidates) {
      assert.equal(c.state, 'healthy');
      assert.ok(Array.isArray(c.reasons));
      assert.ok(c.order >= 1);
    }
    const none = await decision(mr, 'no-such-model-anywhere');
    assert.equal(none.route, null);
  });

  test('sticky sessions: the same x-claude-code-session-id stays on its channel', async () => {
    await makeRoute(mr, 'sticky-model', [
      { accountId: A1, sourceModel: 'gpt-4o-mini', weight: 10 },
      { accountId: A2, sourceModel: 'gpt-4o-mini', weight: 10 },
    ]);
    const seen = new Set();
    for (let s = 0; s < 12; s++) {
      const headers = { 'x-claude-code-session-id': `sess-${process.pid}-${s}` };
      const names = [];
      for (let i = 0; i < 3; i++) {
        const r = await chat(mr, 'sticky-model', {}, headers);
        assert.equal(r.status, 200);
        names.push(r.body.choices[0].message.content.includes(w1.name) ? 'w1' : 'w2');
      }
      assert.equal(new Set(names).size, 1, `session ${s} moved: ${names}`);
      seen.add(names[0]);
    }
    assert.equal(seen.size, 2, 'every session on the same channel: the split is not random');
  });

  test('a restart keeps health: the cooldown is still there after it', async () => {
    // w2 turns into a 429 relay with a long Retry-After, on the same port.
    const port = w2.port;
    await w2.stop();
    const w2b = await startFakeRelay({ ...w2.opts, port, args: ['--fault', '429', '--retry-after', '60'] });
    children.push(w2b);
    await makeRoute(mr, 'restart-model', [
      { accountId: A2, sourceModel: 'gpt-4o-mini', priority: 0 },
      { accountId: A1, sourceModel: 'gpt-4o-mini', priority: 1 },
    ]);
    const r = await chat(mr, 'restart-model');
    assert.equal(r.status, 200, r.text);
    const before = (await decision(mr, 'restart-model')).candidates.find((c) => c.accountId === A2);
    assert.equal(before.excluded, true);
    assert.ok(before.cooldownMs > 50000, JSON.stringify(before));
    const stop = await mr.stop();
    assert.equal(stop.code, 0);
    children.splice(children.indexOf(mr), 1);
    mr = await startMetarelay({ DATA_DIR: dataDir });
    children.push(mr);
    const after = await waitFor(
      async () => (await decision(mr, 'restart-model')).candidates.find((c) => c.accountId === A2),
      { what: 'the route after the restart' },
    );
    assert.equal(after.excluded, true, JSON.stringify(after));
    assert.equal(after.state, 'unhealthy');
    assert.ok(after.cooldownMs > 40000 && after.cooldownMs <= before.cooldownMs, JSON.stringify(after));
    const r2 = await chat(mr, 'restart-model');
    assert.equal(r2.status, 200);
    assert.equal((await rowsOf(mr, r2.rid)).length, 1, 'the cooled channel is skipped after the restart');
  });
});

describe('routing: a client that leaves gives the channel its trial back', () => {
  const children = [];
  let mr, fr;
  const MODEL = 'trial-leave-model';

  before(async () => {
    mr = await startMetarelay({ TOKEN_ROUTER_FAILURE_COOLDOWN_BASE_SEC: '0.2', TOKEN_ROUTER_FAILURE_COOLDOWN_MAX_SEC: '0.2' });
    children.push(mr);
    fr = await startFakeRelay({ name: unique('trial'), models: [MODEL], args: ['--fail-first', '1', '--chunks', '30', '--chunk-delay-ms', '50'] });
    children.push(fr);
    await addRelay(mr, fr);
  });

  after(async () => {
    await stopAll(children);
  });

  test('the half-open trial taken by a stream whose client disconnects is released', async () => {
    // 1. the only channel fails once: it cools down for 200 ms
    const first = await readResponse(await mr.proxyFetch('/v1/chat/completions', { body: chatBody(MODEL) }));
    assert.ok(first.status >= 500, first.text);
    await sleep(300); // cooled down: the next request is its half-open trial
    // 2. that trial is a slow stream whose client leaves after the first bytes
    const ac = new AbortController();
    const res = await mr.proxyFetch('/v1/chat/completions', { body: chatBody(MODEL, { stream: true }), signal: ac.signal });
    assert.equal(res.status, 200);
    const reader = res.body.getReader();
    await reader.read();
    ac.abort();
    await reader.cancel().catch(() => {});
    await sleep(150);
    // 3. the channel is not held by a trial nobody will ever finish
    const third = await readResponse(await mr.proxyFetch('/v1/chat/completions', { body: chatBody(MODEL) }));
    assert.equal(third.status, 200, third.text);
  });
});
