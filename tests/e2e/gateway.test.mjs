// gateway.test.mjs — the /v1 data plane of metarelay seen by real clients: the official
// `openai` SDK (and `@anthropic-ai/sdk` for the Anthropic model list), plus raw fetch and
// sockets for the inputs an SDK would never send. Upstreams are emulated relays
// (fakerelay); each reply is compared with the same request sent to the relay directly.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import Anthropic from '@anthropic-ai/sdk';

import {
  PROXY_TOKEN,
  addRelay,
  attemptOf,
  chatBody,
  fakeStats,
  firstByteOf,
  logsFor,
  parseSSE,
  proxyLogs,
  readResponse,
  routableModels,
  sseJson,
  startFakeRelay,
  restartFakeRelay,
  startMetarelay,
  statClientClosed,
  statLastRequest,
  stopAll,
  unique,
  waitFor,
} from './lib/harness.mjs';

const CHAT = 'gpt-4o-mini';
const INSTRUCT = 'gpt-3.5-turbo-instruct';
const EMBED = 'text-embedding-3-small';
const IMAGE = 'dall-e-3';
const SLOW = 'slow-stream-model';

/** Asserts an OpenAI-shaped error answer with the given status; returns the error object. */
function assertOpenAIError(r, status) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.text}`);
  assert.ok(r.body && typeof r.body.error === 'object', `not an OpenAI error: ${r.text}`);
  const e = r.body.error;
  assert.equal(typeof e.message, 'string');
  assert.ok(e.message.length > 0);
  assert.equal(typeof e.type, 'string');
  assert.ok('code' in e, `error.code missing: ${r.text}`);
  assert.ok('param' in e, `error.param missing: ${r.text}`);
  return e;
}

/** Collects a whole SDK stream; returns the chunks. */
async function collect(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

/** What a client sees of a chat stream: content deltas, finish reasons and usage. */
function streamView(chunks) {
  return chunks.map((c) => ({
    content: c.choices?.map((ch) => ch.delta?.content ?? null) ?? [],
    finish: c.choices?.map((ch) => ch.finish_reason ?? null) ?? [],
    usage: c.usage ?? null,
  }));
}

function overheadHeader(headers) {
  const v = headers.get('x-metarelay-overhead-us');
  assert.ok(v !== null, 'x-metarelay-overhead-us missing');
  assert.match(v, /^\d+$/, `x-metarelay-overhead-us not a number of microseconds: ${v}`);
  return Number(v);
}

describe('gateway pass-through', () => {
  let mr;
  let relay; // serves every normal model and the fault models
  let relayB; // a second relay with the fault models only: "all channels fail" needs two
  let slowRelay; // streams 100 chunks, 100 ms apart
  let ids;
  const children = [];

  before(async () => {
    const faultModels = ['fault-500-all', 'fault-silence-all'];
    relay = await startFakeRelay({ name: unique('main'), models: [CHAT, INSTRUCT, EMBED, IMAGE, 'fault-cut-x', ...faultModels] });
    children.push(relay);
    relayB = await startFakeRelay({ name: unique('second'), models: faultModels });
    children.push(relayB);
    slowRelay = await startFakeRelay({ name: unique('slow'), models: [SLOW], chunks: 100, chunkDelayMs: 100 });
    children.push(slowRelay);
    mr = await startMetarelay({ PROXY_FIRST_BYTE_TIMEOUT_SEC: '1' });
    children.push(mr);
    ids = await addRelay(mr, relay);
    await addRelay(mr, relayB);
    await addRelay(mr, slowRelay);
  });

  after(async () => {
    await stopAll(children);
  });

  test('healthz answers ok without a key', async () => {
    const r = await readResponse(await fetch(mr.url('/healthz')));
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { status: 'ok' });
  });

  test('models list is the union of the relays\' models (OpenAI shape)', async () => {
    const client = mr.openai();
    const ids = [];
    for await (const m of client.models.list()) {
      assert.equal(m.object, 'model');
      ids.push(m.id);
    }
    for (const m of [...relay.models, ...relayB.models]) assert.ok(ids.includes(m), `${m} missing from ${ids}`);
    assert.equal(new Set(ids).size, ids.length, `duplicate ids in ${ids}`);
  });

  test('models list with anthropic-version has the Anthropic shape (Anthropic SDK)', async () => {
    const client = new Anthropic({ apiKey: PROXY_TOKEN, baseURL: mr.base, maxRetries: 0 });
    const models = [];
    for await (const m of client.models.list()) models.push(m);
    const ids = models.map((m) => m.id);
    assert.deepEqual(new Set(ids), new Set(await routableModels(mr)));
    for (const m of models) {
      assert.equal(m.type, 'model');
      assert.equal(typeof m.display_name, 'string');
      assert.ok(!Number.isNaN(Date.parse(m.created_at)), `created_at not a date: ${m.created_at}`);
    }
    // The page fields themselves, as a raw client sees them.
    const r = await readResponse(
      await mr.proxyFetch('/v1/models', { method: 'GET', key: null, headers: { 'x-api-key': PROXY_TOKEN, 'anthropic-version': '2023-06-01' } }),
    );
    assert.equal(r.status, 200);
    assert.equal(r.body.has_more, false);
    assert.equal(r.body.first_id, r.body.data[0].id);
    assert.equal(r.body.last_id, r.body.data[r.body.data.length - 1].id);
  });

  test('chat, non-stream: content and usage equal the relay\'s', async () => {
    const body = chatBody(CHAT);
    const direct = await relay.openai().chat.completions.create(body);
    const { data, response } = await mr.openai().chat.completions.create(body).withResponse();
    assert.equal(response.status, 200);
    assert.equal(data.object, 'chat.completion');
    assert.equal(data.choices[0].message.content, direct.choices[0].message.content);
    assert.ok(data.choices[0].message.content.length > 0);
    assert.equal(data.choices[0].finish_reason, direct.choices[0].finish_reason);
    assert.deepEqual(data.usage, direct.usage);
    assert.ok(data.usage.total_tokens > 0);
    overheadHeader(response.headers);
  });

  test('chat through /chat/completions (no /v1 prefix) is served too', async () => {
    const r = await readResponse(await mr.proxyFetch('/chat/completions', { body: chatBody(CHAT) }));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.object, 'chat.completion');
  });

  test('chat, stream with include_usage: every chunk in order and the usage chunk', async () => {
    const body = chatBody(CHAT, { stream: true, stream_options: { include_usage: true } });
    const direct = streamView(await collect(await relay.openai().chat.completions.create(body)));
    const { data: stream, response } = await mr.openai().chat.completions.create(body).withResponse();
    assert.match(response.headers.get('content-type') ?? '', /text\/event-stream/);
    overheadHeader(response.headers);
    const got = streamView(await collect(stream));
    assert.ok(direct.length >= 3, `reference stream too short: ${JSON.stringify(direct)}`);
    assert.deepEqual(got, direct);
    const usage = got.filter((c) => c.usage).map((c) => c.usage);
    assert.equal(usage.length, 1, 'exactly one usage chunk');
    assert.ok(usage[0].total_tokens > 0);
  });

  test('chat, stream without include_usage: metarelay asks upstream but the client gets no usage chunk', async () => {
    const body = chatBody(CHAT, { stream: true });
    const direct = streamView(await collect(await relay.openai().chat.completions.create(body)));
    const chunks = await collect(await mr.openai().chat.completions.create(body));
    // Read what the relay received before any other request reaches it.
    const last = statLastRequest(await fakeStats(relay));
    assert.equal(last.body?.stream_options?.include_usage, true, `upstream body: ${JSON.stringify(last.body)}`);
    assert.equal(last.body?.model, CHAT);
    for (const c of chunks) {
      assert.ok(!c.usage, `usage chunk leaked to a client that did not ask: ${JSON.stringify(c)}`);
      assert.ok(Array.isArray(c.choices) && c.choices.length > 0, `empty-choices chunk leaked: ${JSON.stringify(c)}`);
    }
    assert.deepEqual(streamView(chunks), direct);
  });

  test('chat, stream: the raw SSE ends with [DONE]', async () => {
    const res = await mr.proxyFetch('/v1/chat/completions', { body: chatBody(CHAT, { stream: true }) });
    assert.equal(res.status, 200);
    const events = parseSSE(await res.text());
    assert.ok(events.length >= 2);
    assert.equal(events[events.length - 1].data, '[DONE]');
    assert.equal(events.filter((e) => e.data === '[DONE]').length, 1);
    for (const c of sseJson(events)) assert.equal(c.object, 'chat.completion.chunk');
  });

  test('completions', async () => {
    const body = { model: INSTRUCT, prompt: 'Say hello', max_tokens: 16 };
    const direct = await relay.openai().completions.create(body);
    const got = await mr.openai().completions.create(body);
    assert.equal(got.object, 'text_completion');
    assert.equal(got.choices[0].text, direct.choices[0].text);
    assert.ok(got.choices[0].text.length > 0);
    assert.deepEqual(got.usage, direct.usage);
  });

  test('embeddings', async () => {
    const body = { model: EMBED, input: ['hello metarelay', 'second input'], encoding_format: 'float' };
    const direct = await relay.openai().embeddings.create(body);
    const got = await mr.openai().embeddings.create(body);
    assert.equal(got.object, 'list');
    assert.equal(got.data.length, 2);
    assert.ok(got.data[0].embedding.length > 0);
    assert.deepEqual(
      got.data.map((d) => d.embedding),
      direct.data.map((d) => d.embedding),
    );
    assert.deepEqual(got.usage, direct.usage);
  });

  test('images', async () => {
    const body = { model: IMAGE, prompt: 'a lighthouse at dusk', n: 1, size: '1024x1024' };
    const direct = await relay.openai().images.generate(body);
    const got = await mr.openai().images.generate(body);
    assert.ok(Array.isArray(got.data) && got.data.length === 1, JSON.stringify(got));
    assert.deepEqual(got.data, direct.data);
  });

  test('every answer carries an x-request-id, a fresh one per request', async () => {
    const seen = new Set();
    for (const init of [{ body: chatBody(CHAT) }, { body: chatBody(CHAT) }, { body: chatBody('no-such-model-xyz') }]) {
      const res = await mr.proxyFetch('/v1/chat/completions', init);
      await res.text();
      const rid = res.headers.get('x-request-id');
      assert.ok(rid && rid.length >= 8, `x-request-id: ${rid}`);
      assert.ok(!seen.has(rid), `x-request-id ${rid} reused`);
      seen.add(rid);
    }
    // A client's own id is not trusted without TRUSTED_PROXIES: it must not be taken blindly
    // for another request's id.
    const res = await mr.proxyFetch('/v1/chat/completions', { body: chatBody(CHAT), headers: { 'x-request-id': [...seen][0] } });
    await res.text();
    assert.ok(res.headers.get('x-request-id'));
  });

  test('usage rows record tokens, first-byte time and latency (non-stream)', async () => {
    const { data, response } = await mr.openai().chat.completions.create(chatBody(CHAT)).withResponse();
    const rid = response.headers.get('x-request-id');
    const rows = await logsFor(mr, rid);
    assert.equal(rows.length, 1, JSON.stringify(rows));
    const row = rows[0];
    assert.equal(row.status, 'success');
    assert.equal(row.httpStatus, 200);
    assert.equal(row.modelRequested, CHAT);
    assert.equal(row.modelActual, CHAT);
    assert.equal(row.accountId, ids.accountId);
    assert.equal(row.siteId, ids.siteId);
    assert.equal(Boolean(row.isStream), false);
    assert.equal(attemptOf(row), 1);
    assert.match(row.downstreamPath, /\/chat\/completions$/);
    assert.equal(row.promptTokens, data.usage.prompt_tokens);
    assert.equal(row.completionTokens, data.usage.completion_tokens);
    assert.equal(row.totalTokens, data.usage.total_tokens);
    assert.equal(typeof firstByteOf(row), 'number');
    assert.equal(typeof row.latencyMs, 'number');
    assert.ok(firstByteOf(row) >= 0 && row.latencyMs >= firstByteOf(row), JSON.stringify(row));
    assert.ok(row.createdAt, 'createdAt');
  });

  test('usage rows of a stream carry the tokens metarelay asked for', async () => {
    const ref = await collect(
      await relay.openai().chat.completions.create(chatBody(CHAT, { stream: true, stream_options: { include_usage: true } })),
    );
    const refUsage = ref.find((c) => c.usage).usage;
    const { data: stream, response } = await mr.openai().chat.completions.create(chatBody(CHAT, { stream: true })).withResponse();
    await collect(stream);
    const rows = await logsFor(mr, response.headers.get('x-request-id'));
    assert.equal(rows.length, 1, JSON.stringify(rows));
    const row = rows[0];
    assert.equal(row.status, 'success');
    assert.equal(Boolean(row.isStream), true);
    assert.equal(row.promptTokens, refUsage.prompt_tokens);
    assert.equal(row.completionTokens, refUsage.completion_tokens);
    assert.equal(row.totalTokens, refUsage.total_tokens);
    assert.ok(firstByteOf(row) >= 0 && row.latencyMs >= firstByteOf(row), JSON.stringify(row));
  });

  test('proxy-logs paging and filters', async () => {
    const all = await proxyLogs(mr, { limit: '2', offset: '0' });
    assert.equal(all.limit, 2);
    assert.equal(all.offset, 0);
    assert.ok(all.items.length <= 2);
    assert.ok(all.total >= 3, `total ${all.total}`);
    const page2 = await proxyLogs(mr, { limit: '2', offset: '2' });
    const firstIds = new Set(all.items.map((r) => r.id));
    for (const r of page2.items) assert.ok(!firstIds.has(r.id), 'pages overlap');
    const ok = await proxyLogs(mr, { status: 'success', model: CHAT });
    assert.ok(ok.items.length > 0);
    for (const r of ok.items) {
      assert.equal(r.status, 'success');
      assert.equal(r.modelRequested, CHAT);
    }
    const none = await proxyLogs(mr, { model: 'no-such-model-in-logs' });
    assert.equal(none.items.length, 0);
    assert.equal(none.total, 0);
  });

  test('all channels answering 500 → 502 naming the two attempts', async () => {
    const r = await readResponse(await mr.proxyFetch('/v1/chat/completions', { body: chatBody('fault-500-all') }));
    const rid = r.headers.get('x-request-id');
    const e = assertOpenAIError(r, 502);
    assert.match(e.message, /\b2\b/, `message does not say how many channels were tried: ${e.message}`);
    assert.match(e.message, /channel/i);
    assert.ok(!e.message.includes(relay.key) && !e.message.includes(relayB.key), 'a relay key leaked');
    const rows = await logsFor(mr, rid, (rs) => rs.length >= 2);
    assert.equal(rows.length, 2);
    for (const row of rows) assert.equal(row.status, 'failed');
    assert.deepEqual(new Set(rows.map(attemptOf)), new Set([1, 2]));
    // both relays were really tried
    const sites = new Set(rows.map((x) => x.siteId));
    assert.equal(sites.size, 2);
  });

  test('all channels silent → 504 after the first-byte timeout of each', async () => {
    const t0 = Date.now();
    const r = await readResponse(await mr.proxyFetch('/v1/chat/completions', { body: chatBody('fault-silence-all') }));
    const elapsed = Date.now() - t0;
    assert.ok([502, 503, 504].includes(r.status), `status ${r.status}: ${r.text}`);
    const e = assertOpenAIError(r, r.status);
    assert.match(e.message, /\b2\b/, e.message);
    assert.ok(elapsed >= 1500, `gave up after ${elapsed} ms, before two 1 s first-byte timeouts`);
  });

  test('bad input: malformed JSON → 400 with the byte offset', async () => {
    const text = `{"model":"${CHAT}","messages":[{"role":"user","content":"hi"}],}`;
    const r = await readResponse(await mr.proxyFetch('/v1/chat/completions', { body: text }));
    const e = assertOpenAIError(r, 400);
    const m = /byte (\d+)/.exec(e.message);
    assert.ok(m, `no "byte <offset>" in: ${e.message}`);
    const where = text.length - 1; // the '}' after the trailing comma (0-based)
    assert.ok(Math.abs(Number(m[1]) - where) <= 1, `offset ${m[1]} but the error is at byte ${where}`);
  });

  test('bad input: empty body and non-object bodies → 400', async () => {
    for (const text of ['', '[1,2]', '"model"', '{"model":"gpt-4o-mini"']) {
      const r = await readResponse(await mr.proxyFetch('/v1/chat/completions', { body: text }));
      assertOpenAIError(r, 400);
    }
  });

  test('bad input: missing model → 400', async () => {
    const r = await readResponse(await mr.proxyFetch('/v1/chat/completions', { body: { messages: [{ role: 'user', content: 'x' }] } }));
    const e = assertOpenAIError(r, 400);
    assert.match(e.message, /model/i);
  });

  test('bad input: duplicate top-level model key → 400', async () => {
    const text = `{"model":"${CHAT}","messages":[{"role":"user","content":"x"}],"model":"fault-500-all"}`;
    const r = await readResponse(await mr.proxyFetch('/v1/chat/completions', { body: text }));
    const e = assertOpenAIError(r, 400);
    assert.match(e.message, /duplicate|model/i);
  });

  test('unknown model → 404', async () => {
    const r = await readResponse(await mr.proxyFetch('/v1/chat/completions', { body: chatBody('no-such-model-xyz') }));
    const e = assertOpenAIError(r, 404);
    assert.match(e.message, /no-such-model-xyz/);
  });

  test('SDK error for an unknown model is a NotFoundError', async () => {
    await assert.rejects(mr.openai().chat.completions.create(chatBody('no-such-model-xyz')), (err) => {
      assert.equal(err.status, 404);
      return true;
    });
  });

  test('no key → 401, wrong key → 403 (chat and models)', async () => {
    for (const [p, method, body] of [
      ['/v1/chat/completions', 'POST', chatBody(CHAT)],
      ['/v1/models', 'GET', undefined],
    ]) {
      assertOpenAIError(await readResponse(await mr.proxyFetch(p, { method, body, key: null })), 401);
      assertOpenAIError(await readResponse(await mr.proxyFetch(p, { method, body, key: 'sk-wrong' })), 403);
      assertOpenAIError(
        await readResponse(await mr.proxyFetch(p, { method, body, key: null, headers: { 'x-api-key': 'sk-wrong' } })),
        403,
      );
    }
    await assert.rejects(mr.openai({ apiKey: 'sk-wrong' }).chat.completions.create(chatBody(CHAT)), (err) => err.status === 403);
  });

  test('key accepted via x-api-key, x-goog-api-key and ?key=', async () => {
    const variants = [
      { p: '/v1/chat/completions', headers: { 'x-api-key': PROXY_TOKEN } },
      { p: '/v1/chat/completions', headers: { 'x-goog-api-key': PROXY_TOKEN } },
      { p: `/v1/chat/completions?key=${encodeURIComponent(PROXY_TOKEN)}`, headers: {} },
    ];
    for (const v of variants) {
      const r = await readResponse(await mr.proxyFetch(v.p, { body: chatBody(CHAT), key: null, headers: v.headers }));
      assert.equal(r.status, 200, `${JSON.stringify(v)} → ${r.status} ${r.text}`);
      assert.equal(r.body.object, 'chat.completion');
    }
    // a key in the query never reaches the relay
    const last = statLastRequest(await fakeStats(relay));
    assert.ok(!JSON.stringify(last.raw).includes(PROXY_TOKEN), 'the downstream key reached the relay');
  });

  test('the access log never shows the downstream key', async () => {
    await readResponse(await mr.proxyFetch(`/v1/models?key=${PROXY_TOKEN}`, { method: 'GET', key: null }));
    await sleep(200); // the log writer flushes asynchronously
    assert.ok(!mr.stdout.includes(PROXY_TOKEN), 'PROXY_TOKEN appears in the access log');
    assert.ok(!mr.stderr.includes(PROXY_TOKEN), 'PROXY_TOKEN appears in stderr');
    assert.ok(mr.stdout.trim().length > 0, 'no access log on stdout');
    const lines = mr.stdout.trim().split('\n').map((l) => JSON.parse(l)); // one JSON object per line
    const proxied = lines.filter((l) => l.model !== undefined);
    assert.ok(proxied.length > 0, 'proxied requests are logged');
    for (const l of proxied) {
      assert.equal(typeof l.ts, 'number');
      assert.match(l.rid, /^req_[0-9a-f]{24}$/);
      assert.equal(typeof l.status, 'number');
      assert.equal(typeof l.attempts, 'number');
      assert.equal(typeof l.stream, 'boolean');
      assert.ok(Number.isInteger(l.ms) && l.ms >= 0);
    }
  });

  test('a client disconnecting mid-stream closes the upstream connection', async () => {
    const before = statClientClosed(await fakeStats(slowRelay));
    const client = mr.openai();
    const stream = await client.chat.completions.create(chatBody(SLOW, { stream: true }));
    let seen = 0;
    for await (const chunk of stream) {
      assert.ok(chunk);
      seen += 1;
      if (seen === 2) break; // break aborts the request: the client goes away
    }
    const t0 = Date.now();
    await waitFor(async () => statClientClosed(await fakeStats(slowRelay)) > before, {
      timeoutMs: 1500,
      what: 'fakerelay to see its client (metarelay) close mid-response',
    });
    assert.ok(Date.now() - t0 < 1500);
  });

  test('a stream cut after the first chunk ends in an error for the client, never a clean finish', async () => {
    let received = 0;
    await assert.rejects(
      (async () => {
        const stream = await mr.openai().chat.completions.create(chatBody('fault-cut-x', { stream: true }));
        for await (const chunk of stream) {
          assert.ok(chunk);
          received += 1;
        }
      })(),
      (err) => {
        assert.ok(!(err instanceof assert.AssertionError), err.message);
        return true;
      },
      'the SDK finished the cut stream as if it were complete',
    );
    assert.ok(received >= 1, 'no chunk reached the client before the cut (the cut should come after the first byte)');

    // Raw view: either the transfer aborts, or an error event is sent.
    const res = await mr.proxyFetch('/v1/chat/completions', { body: chatBody('fault-cut-x', { stream: true }) });
    assert.equal(res.status, 200);
    let text = '';
    let aborted = false;
    try {
      text = await res.text();
    } catch {
      aborted = true;
    }
    const errorEvent = parseSSE(text).some((e) => e.event === 'error' || /"error"/.test(e.data));
    assert.ok(aborted || errorEvent, `stream ended cleanly without an error: ${text.slice(-300)}`);
  });
});

describe('failover between relays', () => {
  let mr;
  let healthy;
  const children = [];

  before(async () => {
    mr = await startMetarelay({ PROXY_FIRST_BYTE_TIMEOUT_SEC: '1', PROXY_MAX_CHANNEL_ATTEMPTS: '3' });
    children.push(mr);
    // Each failing relay is registered while healthy (a relay-wide fault breaks its
    // /v1/models too), then restarted on the same port with its fault. Failing relays are
    // registered first: a stable-first strategy then tries them first.
    const failing = [
      ['fo-500', '500'],
      ['fo-429', '429'],
      ['fo-silence', 'silence'],
      ['fo-conn', null], // stopped: its port refuses connections
    ];
    const registered = [];
    for (const [model] of failing) {
      const fr = await startFakeRelay({ name: unique(model), models: [model] });
      children.push(fr);
      await addRelay(mr, fr);
      registered.push(fr);
    }
    healthy = await startFakeRelay({ name: unique('healthy'), models: failing.map(([m]) => m) });
    children.push(healthy);
    await addRelay(mr, healthy);
    for (let i = 0; i < failing.length; i++) {
      const fault = failing[i][1];
      if (fault) children.push(await restartFakeRelay(registered[i], { fault }));
      else await registered[i].stop();
    }
  });

  after(async () => {
    await stopAll(children);
  });

  /**
   * Sends requests for `model` until one of them needed a second channel (the channel
   * order is metarelay's to choose); every client answer must be a success. Returns the
   * usage rows of the request that failed over.
   */
  async function untilFailover(model, tries = 12) {
    for (let i = 0; i < tries; i++) {
      const { data, response } = await mr.openai().chat.completions.create(chatBody(model)).withResponse();
      assert.equal(response.status, 200);
      const rid = response.headers.get('x-request-id');
      assert.ok(data.choices[0].message.content.length > 0);
      const rows = await logsFor(mr, rid, (rs) => rs.some((r) => r.status === 'success'));
      if (rows.some((r) => r.status === 'failed')) return rows;
    }
    throw new Error(`${tries} requests for ${model} never tried the failing channel first`);
  }

  function assertOneFailedOneSuccess(rows) {
    assert.equal(rows.length, 2, JSON.stringify(rows));
    const failed = rows.find((r) => r.status === 'failed');
    const ok = rows.find((r) => r.status === 'success');
    assert.ok(failed && ok);
    assert.equal(attemptOf(failed), 1);
    assert.equal(attemptOf(ok), 2);
    assert.notEqual(failed.siteId, ok.siteId);
    assert.ok(failed.errorMessage && failed.errorMessage.length > 0, 'failed attempt without an error message');
    return failed;
  }

  test('relay answering 500 → the client gets 200, logs show one failed and one successful attempt', async () => {
    const failed = assertOneFailedOneSuccess(await untilFailover('fo-500'));
    assert.equal(failed.httpStatus, 500);
  });

  test('relay answering 429 → failover', async () => {
    const failed = assertOneFailedOneSuccess(await untilFailover('fo-429'));
    assert.equal(failed.httpStatus, 429);
  });

  test('first-byte timeout → failover', async () => {
    const failed = assertOneFailedOneSuccess(await untilFailover('fo-silence'));
    assert.match(failed.errorMessage, /time/i);
  });

  test('connection refused → failover', async () => {
    assertOneFailedOneSuccess(await untilFailover('fo-conn'));
  });

  test('streams fail over too', async () => {
    const chunks = await collect(await mr.openai().chat.completions.create(chatBody('fo-500', { stream: true })));
    assert.ok(chunks.length >= 2);
    assert.ok(chunks.some((c) => c.choices?.[0]?.delta?.content));
  });
});

describe('request limits', () => {
  let mr;

  before(async () => {
    mr = await startMetarelay({ MAX_BODY_MB: '1', HEADER_TIMEOUT_SEC: '0.5' });
  });

  after(async () => {
    await stopAll([mr]);
  });

  test('body over MAX_BODY_MB → 413', async () => {
    const filler = 'x'.repeat(1100 * 1024);
    const text = JSON.stringify(chatBody(CHAT, { messages: [{ role: 'user', content: filler }] }));
    const r = await readResponse(await mr.proxyFetch('/v1/chat/completions', { body: text }));
    assertOpenAIError(r, 413);
  });

  test('chunked body over MAX_BODY_MB → 413', async () => {
    const piece = new TextEncoder().encode('x'.repeat(64 * 1024));
    let sent = 0;
    const body = new ReadableStream({
      start(ctrl) {
        ctrl.enqueue(new TextEncoder().encode(`{"model":"${CHAT}","messages":[{"role":"user","content":"`));
      },
      pull(ctrl) {
        if (sent >= 1100 * 1024) {
          ctrl.enqueue(new TextEncoder().encode('"}]}'));
          ctrl.close();
          return;
        }
        sent += piece.length;
        ctrl.enqueue(piece);
      },
    });
    const res = await fetch(mr.url('/v1/chat/completions'), {
      method: 'POST',
      headers: { authorization: `Bearer ${PROXY_TOKEN}`, 'content-type': 'application/json' },
      body,
      duplex: 'half',
    });
    assertOpenAIError(await readResponse(res), 413);
  });

  test('body just under MAX_BODY_MB is read and routed (unknown model → 404, not 413)', async () => {
    const filler = 'y'.repeat(900 * 1024);
    const text = JSON.stringify(chatBody('no-such-model-big', { messages: [{ role: 'user', content: filler }] }));
    const r = await readResponse(await mr.proxyFetch('/v1/chat/completions', { body: text }));
    assertOpenAIError(r, 404);
  });

  test('slow header sender → 408 after HEADER_TIMEOUT_SEC', async () => {
    const t0 = Date.now();
    const reply = await new Promise((resolve, reject) => {
      const sock = net.connect(mr.port, '127.0.0.1');
      let data = '';
      sock.setEncoding('utf8');
      sock.on('connect', () => sock.write('POST /v1/chat/compl'));
      sock.on('data', (d) => (data += d));
      sock.on('error', reject);
      sock.on('close', () => resolve(data));
      sock.setTimeout(8000, () => {
        sock.destroy();
        reject(new Error(`no answer within 8 s; got: ${data}`));
      });
    });
    const elapsed = Date.now() - t0;
    assert.match(reply, /^HTTP\/1\.1 408 /, `reply: ${reply.slice(0, 200)}`);
    assert.ok(elapsed >= 400, `answered after ${elapsed} ms, before HEADER_TIMEOUT_SEC=0.5`);
    assert.ok(elapsed < 5000, `answered after ${elapsed} ms`);
  });

  test('the server still answers after the limit errors', async () => {
    const r = await readResponse(await fetch(mr.url('/healthz')));
    assert.equal(r.status, 200);
  });
});

describe('graceful stop', () => {
  let mr;
  let relay;
  const children = [];

  before(async () => {
    relay = await startFakeRelay({ name: unique('drain'), models: [CHAT], chunks: 10, chunkDelayMs: 200 });
    children.push(relay);
    mr = await startMetarelay({ DRAIN_TIMEOUT_SEC: '20' });
    children.push(mr);
    await addRelay(mr, relay);
  });

  after(async () => {
    await stopAll(children);
  });

  test('SIGTERM while a slow stream is open: the stream completes and metarelay exits 0', async () => {
    const body = chatBody(CHAT, { stream: true });
    const refP = relay
      .openai()
      .chat.completions.create(body)
      .then((s) => collect(s));
    refP.catch(() => {}); // awaited below; no unhandled rejection if the test fails first
    const stream = await mr.openai().chat.completions.create(body);
    const chunks = [];
    let signalled = false;
    for await (const c of stream) {
      chunks.push(c);
      if (!signalled) {
        signalled = true;
        mr.expectedExit = true;
        mr.proc.kill('SIGTERM');
      }
    }
    const ref = await refP;
    assert.ok(ref.length >= 10, `reference stream has ${ref.length} chunks; --chunks not honoured?`);
    assert.deepEqual(streamView(chunks), streamView(ref));
    const exit = await Promise.race([mr.exited, sleep(15000).then(() => null)]);
    assert.ok(exit, `metarelay did not exit within 15 s of SIGTERM\n${mr.describe()}`);
    assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}\n${mr.describe()}`);
  });
});
