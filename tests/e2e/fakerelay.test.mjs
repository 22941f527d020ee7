// fakerelay end-to-end: starts the built emulator on a free port and checks every endpoint,
// every fault kind and the /_fake/stats counters with node's own fetch and test runner.
// FAKERELAY_BIN selects the binary (default build/asan/fakerelay); an ASan build also
// checks that the process stops cleanly and leak-free on SIGTERM (exit code 0).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

const BIN = process.env.FAKERELAY_BIN || 'build/asan/fakerelay';
const KEY = 'sk-fake-test';

/** Starts fakerelay; resolves { base, port, proc, stop() } once it printed its port. */
export async function startFakerelay(args = []) {
  const proc = spawn(BIN, ['--port', '0', ...args], {
    env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=1', UBSAN_OPTIONS: 'halt_on_error=1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const line = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`fakerelay did not start: ${stderr}`)), 10000);
    proc.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(out.slice(0, nl));
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`fakerelay exited (${code}) before listening: ${stderr}`));
    });
  });
  const m = /^listening (.+):(\d+)$/.exec(line);
  assert.ok(m, `first stdout line: ${line}`);
  const port = Number(m[2]);
  return {
    proc,
    port,
    base: `http://127.0.0.1:${port}`,
    stderr: () => stderr,
    async stop() {
      proc.kill('SIGTERM');
      const r = await exited;
      assert.equal(r.code, 0, `fakerelay exit ${r.code}/${r.signal}; stderr:\n${stderr}`);
    },
  };
}

const auth = { authorization: `Bearer ${KEY}` };
const jsonHeaders = { ...auth, 'content-type': 'application/json' };

function post(base, path, body, headers = {}) {
  return fetch(base + path, {
    method: 'POST',
    headers: { ...jsonHeaders, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** Splits an SSE body into the payloads of its data: lines. */
function sseData(text) {
  return text
    .split('\n\n')
    .filter((f) => f.length)
    .map((f) => {
      assert.ok(f.startsWith('data: '), `frame: ${JSON.stringify(f)}`);
      return f.slice(6);
    });
}

const tokens = (s) => Math.max(1, Math.ceil([...s].length / 4));

async function stats(base) {
  const r = await fetch(base + '/_fake/stats');
  assert.equal(r.status, 200);
  return r.json();
}

async function resetStats(base) {
  const r = await fetch(base + '/_fake/reset', { method: 'POST' });
  assert.equal(r.status, 200);
  await r.arrayBuffer();
}

/** Polls `cond` (async) until true or the timeout. */
async function eventually(cond, ms = 2000) {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(20);
  }
}

describe('fakerelay', () => {
  let fr;
  before(async () => {
    fr = await startFakerelay(['--key', KEY, '--name', 'r1', '--models', 'gpt-4o-mini,gpt-4o,text-embedding-3-small,dall-e-3']);
  });
  after(async () => {
    await fr.stop();
  });

  test('GET /v1/models lists the configured models, keyed', async () => {
    const r = await fetch(fr.base + '/v1/models', { headers: auth });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-fakerelay-name'), 'r1');
    const j = await r.json();
    assert.equal(j.object, 'list');
    assert.deepEqual(j.data.map((m) => m.id), ['gpt-4o-mini', 'gpt-4o', 'text-embedding-3-small', 'dall-e-3']);
    assert.equal(j.data[0].object, 'model');
  });

  test('missing or wrong key: 401 OpenAI error', async () => {
    for (const headers of [{}, { authorization: 'Bearer nope' }, { authorization: KEY }]) {
      const r = await fetch(fr.base + '/v1/models', { headers });
      assert.equal(r.status, 401);
      const j = await r.json();
      assert.equal(j.error.code, 'invalid_api_key');
      assert.equal(j.error.type, 'invalid_request_error');
    }
    const ok = await fetch(fr.base + '/v1/models', { headers: { 'x-api-key': KEY } });
    assert.equal(ok.status, 200);
    await ok.arrayBuffer();
  });

  test('unknown path 404, wrong method 405, bad JSON 400, unknown model 404', async () => {
    let r = await fetch(fr.base + '/v1/nope', { headers: auth });
    assert.equal(r.status, 404);
    assert.match((await r.json()).error.message, /Invalid URL/);
    r = await fetch(fr.base + '/v1/chat/completions', { headers: auth });
    assert.equal(r.status, 405);
    await r.arrayBuffer();
    r = await post(fr.base, '/v1/chat/completions', '{"model":');
    assert.equal(r.status, 400);
    assert.match((await r.json()).error.message, /parse the JSON/);
    r = await post(fr.base, '/v1/chat/completions', '{"model":"a","model":"b"}');
    assert.equal(r.status, 400, 'duplicate keys are rejected');
    await r.arrayBuffer();
    r = await post(fr.base, '/v1/chat/completions', { model: 'gpt-4o', messages: 'hi' });
    assert.equal(r.status, 400);
    await r.arrayBuffer();
    r = await post(fr.base, '/v1/chat/completions', { model: 'nope', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.status, 404);
    assert.equal((await r.json()).error.code, 'model_not_found');
    r = await post(fr.base, '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }, { 'x-fake-chunks': 'many' });
    assert.equal(r.status, 400);
    await r.arrayBuffer();
    r = await post(fr.base, '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }, { 'x-fake-fault': 'meteor' });
    assert.equal(r.status, 400);
    assert.match((await r.json()).error.message, /unknown fault/);
  });

  test('chat completion: deterministic echo and usage', async () => {
    const messages = [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'first' },
      { role: 'assistant', content: 'ok' },
      { role: 'user', content: [{ type: 'text', text: 'hi there' }] },
    ];
    const r = await post(fr.base, '/v1/chat/completions', { model: 'gpt-4o', messages });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-fakerelay-name'), 'r1');
    const j = await r.json();
    assert.equal(j.object, 'chat.completion');
    assert.equal(j.model, 'gpt-4o');
    assert.equal(j.system_fingerprint, 'fp_r1');
    const text = 'Hello from r1: hi there';
    assert.equal(j.choices[0].message.content, text);
    assert.equal(j.choices[0].message.role, 'assistant');
    assert.equal(j.choices[0].finish_reason, 'stop');
    const prompt = tokens('be brief' + 'first' + 'ok' + 'hi there');
    assert.deepEqual(j.usage, { prompt_tokens: prompt, completion_tokens: tokens(text), total_tokens: prompt + tokens(text) });
  });

  test('chat completion: max_tokens cuts with finish_reason length; long echoes are cut', async () => {
    let r = await post(fr.base, '/v1/chat/completions', { model: 'gpt-4o', max_tokens: 2, messages: [{ role: 'user', content: 'hello world' }] });
    let j = await r.json();
    assert.equal(j.choices[0].message.content, 'Hello fr');
    assert.equal(j.choices[0].finish_reason, 'length');
    assert.equal(j.usage.completion_tokens, 2);
    r = await post(fr.base, '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'é'.repeat(100) }] });
    j = await r.json();
    assert.equal(j.choices[0].message.content, 'Hello from r1: ' + 'é'.repeat(64));
    assert.equal(j.usage.prompt_tokens, 25);
  });

  test('chat stream with include_usage: role, N content chunks, finish, usage, [DONE]', async () => {
    const r = await post(
      fr.base,
      '/v1/chat/completions',
      { model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'stream me' }] },
      { 'x-fake-chunks': '3' },
    );
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/event-stream/);
    const data = sseData(await r.text());
    assert.equal(data.length, 1 + 3 + 1 + 1 + 1);
    assert.equal(data.at(-1), '[DONE]');
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    for (const c of chunks) assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    const text = chunks.slice(1, 4).map((c) => c.choices[0].delta.content).join('');
    assert.equal(text, 'Hello from r1: stream me');
    assert.equal(chunks[4].choices[0].finish_reason, 'stop');
    assert.deepEqual(chunks[5].choices, []);
    assert.equal(chunks[5].usage.completion_tokens, tokens(text));
    assert.equal(chunks[5].usage.prompt_tokens, tokens('stream me'));
    assert.equal(chunks[1].usage, null, 'chunks carry usage:null when usage is asked for');
  });

  test('chat stream without include_usage has no usage chunk', async () => {
    const r = await post(fr.base, '/v1/chat/completions', { model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'x' }] });
    const data = sseData(await r.text());
    assert.equal(data.length, 1 + 4 + 1 + 1, 'default --chunks 4');
    for (const d of data.slice(0, -1)) assert.ok(!('usage' in JSON.parse(d)));
  });

  test('stream pacing: x-fake-chunk-delay-ms spaces the content chunks', async () => {
    const t0 = Date.now();
    const r = await post(fr.base, '/v1/chat/completions', { model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'slow' }] }, { 'x-fake-chunks': '5', 'x-fake-chunk-delay-ms': '60' });
    const headersAt = Date.now() - t0;
    const reader = r.body.getReader();
    const arrivals = [];
    let text = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
      arrivals.push(Date.now() - t0);
    }
    const total = Date.now() - t0;
    assert.ok(headersAt < 250, `headers after ${headersAt} ms`);
    assert.ok(total >= 5 * 60 - 10, `stream took ${total} ms`);
    assert.ok(arrivals.length >= 3, 'frames arrive in several reads');
    assert.equal(sseData(text).length, 1 + 5 + 1 + 1);
  });

  test('legacy completions, whole and streamed', async () => {
    let r = await post(fr.base, '/v1/completions', { model: 'gpt-4o-mini', prompt: 'say hi' });
    let j = await r.json();
    assert.equal(j.object, 'text_completion');
    assert.equal(j.choices[0].text, 'Hello from r1: say hi');
    assert.equal(j.usage.prompt_tokens, tokens('say hi'));
    r = await post(fr.base, '/v1/completions', { model: 'gpt-4o-mini', prompt: ['a', 'b'], stream: true, stream_options: { include_usage: true } }, { 'x-fake-chunks': '2' });
    const data = sseData(await r.text());
    assert.equal(data.length, 2 + 1 + 1 + 1);
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    assert.equal(chunks[0].choices[0].text + chunks[1].choices[0].text, 'Hello from r1: a');
    assert.equal(chunks[2].choices[0].finish_reason, 'stop');
    assert.deepEqual(chunks[3].choices, []);
    assert.equal(chunks[3].usage.prompt_tokens, 1);
    r = await post(fr.base, '/v1/completions', { model: 'gpt-4o-mini', prompt: 5 });
    assert.equal(r.status, 400);
    await r.arrayBuffer();
  });

  test('embeddings: deterministic unit vectors, dimensions, base64', async () => {
    let r = await post(fr.base, '/v1/embeddings', { model: 'text-embedding-3-small', input: ['alpha', 'beta', 'alpha'] });
    assert.equal(r.status, 200);
    let j = await r.json();
    assert.equal(j.object, 'list');
    assert.equal(j.data.length, 3);
    const [a, b, a2] = j.data.map((d) => d.embedding);
    assert.equal(a.length, 8);
    assert.deepEqual(a, a2);
    assert.notDeepEqual(a, b);
    assert.ok(Math.abs(Math.hypot(...a) - 1) < 1e-6);
    assert.equal(j.usage.prompt_tokens, tokens('alphabetaalpha'));
    r = await post(fr.base, '/v1/embeddings', { model: 'text-embedding-3-small', input: 'alpha', dimensions: 3, encoding_format: 'base64' });
    j = await r.json();
    const buf = Buffer.from(j.data[0].embedding, 'base64');
    assert.equal(buf.length, 12);
    const v = [0, 1, 2].map((i) => buf.readFloatLE(4 * i));
    assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-5);
    r = await post(fr.base, '/v1/embeddings', { model: 'text-embedding-3-small', input: {} });
    assert.equal(r.status, 400);
    await r.arrayBuffer();
  });

  test('images: b64_json and url of a PNG', async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    let r = await post(fr.base, '/v1/images/generations', { model: 'dall-e-3', prompt: 'a cat', response_format: 'b64_json', n: 2 });
    let j = await r.json();
    assert.equal(j.data.length, 2);
    assert.ok(Buffer.from(j.data[0].b64_json, 'base64').subarray(0, 8).equals(png));
    assert.equal(j.data[0].revised_prompt, 'a cat');
    r = await post(fr.base, '/v1/images/generations', { model: 'dall-e-3', prompt: 'a cat' });
    j = await r.json();
    const img = await fetch(j.data[0].url);
    assert.equal(img.headers.get('content-type'), 'image/png');
    assert.ok(Buffer.from(await img.arrayBuffer()).subarray(0, 8).equals(png));
  });

  const chatBody = (extra = {}) => ({ model: 'gpt-4o', messages: [{ role: 'user', content: 'fault?' }], ...extra });

  test('fault 500 by header and by model prefix', async () => {
    let r = await post(fr.base, '/v1/chat/completions', chatBody(), { 'x-fake-fault': '500' });
    assert.equal(r.status, 500);
    assert.equal((await r.json()).error.type, 'server_error');
    r = await post(fr.base, '/v1/chat/completions', chatBody({ model: 'fault-500-gpt-4o' }));
    assert.equal(r.status, 500);
    await r.arrayBuffer();
  });

  test('fault 429 carries Retry-After: 1', async () => {
    const r = await post(fr.base, '/v1/chat/completions', chatBody({ model: 'fault-429' }));
    assert.equal(r.status, 429);
    assert.equal(r.headers.get('retry-after'), '1');
    assert.equal((await r.json()).error.code, 'rate_limit_exceeded');
  });

  test('fault reset: the client sees a network error, no response', async () => {
    await assert.rejects(post(fr.base, '/v1/chat/completions', chatBody(), { 'x-fake-fault': 'reset' }), TypeError);
  });

  test('fault silence: nothing for 300 ms, then the client leaving is counted', async () => {
    await resetStats(fr.base);
    const ac = new AbortController();
    const p = fetch(fr.base + '/v1/chat/completions', {
      method: 'POST',
      headers: { ...jsonHeaders, 'x-fake-fault': 'silence' },
      body: JSON.stringify(chatBody()),
      signal: ac.signal,
    }).then(
      () => 'answered',
      (e) => e,
    );
    const first = await Promise.race([p, sleep(350).then(() => 'silent')]);
    assert.equal(first, 'silent');
    let s = await stats(fr.base);
    assert.equal(s.in_flight, 1);
    assert.equal(s.client_aborts, 0);
    ac.abort();
    assert.equal((await p).name, 'AbortError');
    await eventually(async () => {
      s = await stats(fr.base);
      return s.client_aborts === 1 && s.in_flight === 0;
    });
  });

  test('fault slow-first-byte: answers normally after x-fake-delay-ms', async () => {
    const t0 = Date.now();
    const r = await post(fr.base, '/v1/chat/completions', chatBody({ stream: true }), { 'x-fake-fault': 'slow-first-byte', 'x-fake-delay-ms': '250' });
    const dt = Date.now() - t0;
    assert.ok(dt >= 240, `first byte after ${dt} ms`);
    assert.equal(r.status, 200);
    assert.equal(sseData(await r.text()).at(-1), '[DONE]');
  });

  test('fault cut: the stream stops after x-fake-cut-after chunks without [DONE]', async () => {
    const r = await post(fr.base, '/v1/chat/completions', chatBody({ stream: true }), { 'x-fake-fault': 'cut', 'x-fake-cut-after': '2', 'x-fake-chunks': '5' });
    assert.equal(r.status, 200);
    const reader = r.body.getReader();
    let text = '';
    await assert.rejects(async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += Buffer.from(value).toString();
      }
    });
    const data = sseData(text);
    assert.equal(data.length, 1 + 2, `received: ${text}`);
    assert.ok(!text.includes('[DONE]'));
    const r2 = await post(fr.base, '/v1/chat/completions', chatBody({ model: 'fault-cut' }));
    assert.equal(r2.status, 200);
    await assert.rejects(r2.text());
  });

  test('fault bad-json: 200 with a truncated body, and a broken stream frame', async () => {
    const r = await post(fr.base, '/v1/chat/completions', chatBody(), { 'x-fake-fault': 'bad-json' });
    assert.equal(r.status, 200);
    const body = await r.text();
    assert.ok(body.startsWith('{"id":"chatcmpl-'));
    assert.throws(() => JSON.parse(body));
    const s = await post(fr.base, '/v1/chat/completions', chatBody({ stream: true }), { 'x-fake-fault': 'bad-json' });
    const data = sseData(await s.text());
    assert.equal(data.at(-1), '[DONE]');
    assert.throws(() => JSON.parse(data[1]));
    JSON.parse(data[0]);
  });

  test('stats: requests by path and model, last request headers and body', async () => {
    await resetStats(fr.base);
    let s = await stats(fr.base);
    assert.equal(s.requests_total, 0);
    assert.equal(s.last_request, null);
    await (await post(fr.base, '/v1/chat/completions', chatBody({ stream: true, stream_options: { include_usage: true } }), { 'x-extra': 'yes' })).text();
    await (await fetch(fr.base + '/v1/models', { headers: auth })).text();
    await (await post(fr.base, '/v1/chat/completions', chatBody({ model: 'gpt-4o-mini' }), { 'x-extra': 'again' })).text();
    s = await stats(fr.base);
    assert.equal(s.name, 'r1');
    assert.equal(s.port, fr.port);
    assert.equal(s.requests_total, 3);
    assert.deepEqual(s.requests_by_path, { '/v1/chat/completions': 2, '/v1/models': 1 });
    assert.deepEqual(s.requests_by_model, { 'gpt-4o': 1, 'gpt-4o-mini': 1 });
    assert.equal(s.last_request.method, 'POST');
    assert.equal(s.last_request.target, '/v1/chat/completions');
    assert.equal(s.last_request.headers['x-extra'], 'again');
    assert.equal(s.last_request.headers.authorization, `Bearer ${KEY}`);
    assert.equal(s.last_request.body.model, 'gpt-4o-mini');
    assert.equal(typeof s.last_request.body_raw, 'string');
    assert.equal(s.in_flight, 0);
  });

  test('stats: a client leaving mid-stream is counted, and its connection closes', async (t) => {
    await resetStats(fr.base);
    const s0 = await stats(fr.base);
    // A fresh connection of its own (agent: false), so the counters can see it come and go.
    const req = http.request(fr.base + '/v1/chat/completions', {
      method: 'POST',
      agent: false,
      headers: { ...jsonHeaders, 'x-fake-chunks': '50', 'x-fake-chunk-delay-ms': '50' },
    });
    const firstData = new Promise((resolve, reject) => {
      req.on('response', (res) => res.once('data', resolve));
      req.on('error', reject);
    });
    req.end(JSON.stringify(chatBody({ stream: true })));
    await firstData;
    const s1 = await stats(fr.base);
    assert.equal(s1.in_flight, 1);
    assert.equal(s1.client_aborts, 0);
    req.on('error', () => {});
    req.destroy();
    let s2;
    await eventually(async () => {
      s2 = await stats(fr.base);
      return s2.client_aborts === 1 && s2.in_flight === 0;
    });
    if (s1.connections_open === null) {
      t.diagnostic('this server build has no connection counters (http_server_get_counters)');
      return;
    }
    assert.equal(s1.connections_accepted, s0.connections_accepted + 1);
    assert.equal(s1.connections_open, s0.connections_open + 1);
    await eventually(async () => (await stats(fr.base)).connections_open === s0.connections_open);
  });

  test('stats: keep-alive requests share one connection', async (t) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      await resetStats(fr.base);
      const get = () =>
        new Promise((resolve, reject) => {
          http
            .get(fr.base + '/v1/models', { agent, headers: auth }, (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode));
            })
            .on('error', reject);
        });
      for (let i = 0; i < 5; i++) assert.equal(await get(), 200);
      const s = await stats(fr.base);
      assert.equal(s.requests_by_path['/v1/models'], 5);
      if (s.connections_accepted === null) return t.skip('no connection counters in this server build');
      // The stats fetch may open one more pooled connection of its own.
      assert.ok(s.connections_accepted <= 2, `accepted ${s.connections_accepted}`);
    } finally {
      agent.destroy();
    }
  });
});

describe('fakerelay options', () => {
  test('--fault applies to every request; no --key means no auth', async () => {
    const fr = await startFakerelay(['--fault', '500', '--name', 'broken']);
    try {
      const r = await post(fr.base, '/v1/chat/completions', chatBodyPlain(), { authorization: '' });
      assert.equal(r.status, 500);
      assert.equal(r.headers.get('x-fakerelay-name'), 'broken');
      await r.arrayBuffer();
      const h = await fetch(fr.base + '/_fake/health');
      assert.deepEqual(await h.json(), { status: 'ok', name: 'broken' });
    } finally {
      await fr.stop();
    }
  });

  test('--workers 3 answers concurrent requests and counts them all', async () => {
    const fr = await startFakerelay(['--workers', '3', '--chunks', '2']);
    try {
      const rs = await Promise.all(
        Array.from({ length: 30 }, (_, i) => post(fr.base, '/v1/chat/completions', { ...chatBodyPlain(), stream: i % 2 === 0 }).then((r) => r.text())),
      );
      assert.equal(rs.length, 30);
      for (const [i, t] of rs.entries()) {
        const text =
          i % 2 === 0
            ? sseData(t).slice(1, 3).map((d) => JSON.parse(d).choices[0].delta.content).join('')
            : JSON.parse(t).choices[0].message.content;
        assert.equal(text, 'Hello from fakerelay: hi');
      }
      const s = await stats(fr.base);
      assert.equal(s.workers, 3);
      assert.equal(s.requests_total, 30);
    } finally {
      await fr.stop();
    }
  });

  test('SIGTERM with a silent request and a paced stream in flight: clean, leak-free exit', async () => {
    const fr = await startFakerelay(['--workers', '2']);
    const silent = post(fr.base, '/v1/chat/completions', chatBodyPlain(), { 'x-fake-fault': 'silence' }).then(
      (r) => r.text(),
    ).catch((e) => e);
    const paced = post(fr.base, '/v1/chat/completions', { ...chatBodyPlain(), stream: true }, { 'x-fake-chunks': '100', 'x-fake-chunk-delay-ms': '100' }).then(
      (r) => r.text(),
    ).catch((e) => e);
    const slow = post(fr.base, '/v1/chat/completions', chatBodyPlain(), { 'x-fake-fault': 'slow-first-byte', 'x-fake-delay-ms': '5000' }).then(
      (r) => r.text(),
    ).catch((e) => e);
    await eventually(async () => (await stats(fr.base)).in_flight === 3);
    const t0 = Date.now();
    await fr.stop(); // asserts exit code 0: ASan would fail it on a leak or an error
    assert.ok(Date.now() - t0 < 3000, 'stops without waiting for the answers');
    for (const p of [silent, paced, slow]) assert.ok((await p) instanceof Error, 'the client sees the connection end');
  });

  test('a busy port is refused, not silently shared', async () => {
    const fr = await startFakerelay([]);
    try {
      const p = spawn(BIN, ['--port', String(fr.port)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      let out = '';
      p.stderr.on('data', (d) => (err += d));
      p.stdout.on('data', (d) => (out += d));
      const code = await new Promise((resolve) => p.on('exit', resolve));
      assert.equal(code, 1);
      assert.equal(out, '');
      assert.match(err, /in use/);
    } finally {
      await fr.stop();
    }
  });

  test('bad options are refused with a message', async () => {
    for (const args of [['--workers', '0'], ['--fault', 'meteor'], ['--port', 'x'], ['extra'], ['--formats', 'chat,grpc'], ['--formats', '']]) {
      const p = spawn(BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      p.stderr.on('data', (d) => (err += d));
      const code = await new Promise((resolve) => p.on('exit', resolve));
      assert.equal(code, 2, `${args.join(' ')}: ${err}`);
      assert.match(err, /fakerelay/);
    }
  });
});

// ---------------------------------------------------------------------------------------
// The Claude Messages and Responses surfaces, raw (the SDK view is in
// fakerelay-formats.test.mjs).

/** Parses named-event SSE text into [{event, data}] with data parsed. */
function sseEvents(text) {
  return text
    .split('\n\n')
    .filter((f) => f.length)
    .map((f) => {
      const m = /^(?:event: (.*)\n)?data: (.*)$/s.exec(f);
      assert.ok(m, `frame: ${JSON.stringify(f)}`);
      return { event: m[1], data: m[2] };
    });
}

const claudeHeaders = { 'x-api-key': KEY, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' };
const claude = (base, body, headers = {}) =>
  fetch(base + '/v1/messages', { method: 'POST', headers: { ...claudeHeaders, ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
const msgBody = (extra = {}) => ({ model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }], ...extra });
const WEATHER = { name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };

describe('fakerelay formats (raw)', () => {
  let fr;
  before(async () => {
    fr = await startFakerelay(['--key', KEY, '--name', 'fx', '--models', 'claude-sonnet-4-5,gpt-5,gpt-4o', '--formats', 'messages, responses,chat']);
  });
  after(async () => {
    await fr.stop();
  });

  async function claude400(body, re, headers = {}) {
    const r = await claude(fr.base, body, headers);
    const j = await r.json();
    assert.equal(r.status, 400, JSON.stringify(j));
    assert.equal(j.type, 'error');
    assert.equal(j.error.type, 'invalid_request_error');
    assert.match(j.error.message, re);
  }

  test('messages: validation 400s with the real API wording', async () => {
    await claude400(msgBody({ max_tokens: undefined }), /^max_tokens: Field required$/);
    await claude400(msgBody({ messages: [] }), /at least one message/);
    await claude400(msgBody({ stream_options: { include_usage: true } }), /^stream_options: Extra inputs are not permitted$/);
    await claude400(msgBody({ temperature: 0.5, top_p: 0.9 }), /`temperature` and `top_p` cannot both be specified/);
    await claude400(msgBody({ temperature: 0.5 }), /Extra inputs are not permitted/, { 'anthropic-version': '2026-10-21' });
    await claude400(msgBody({ messages: [{ role: 'assistant', content: 'x' }] }), /first message must use the "user" role/);
    await claude400(
      msgBody({ messages: [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }] }),
      /roles must alternate between "user" and "assistant", but found multiple "user" roles in a row/,
    );
    await claude400(msgBody({ messages: [{ role: 'user', content: [{ type: 'text', text: '' }] }] }), /text content blocks must be non-empty/);
    await claude400(msgBody({ messages: [{ role: 'user', content: [{ type: 'text', text: '  ' }] }] }), /must contain non-whitespace text/);
    await claude400(msgBody({ messages: [{ role: 'user', content: [] }] }), /^messages\.0: all messages must have non-empty content/);
    await claude400(msgBody({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }), /Input tag 'image_url'/);
    await claude400(
      msgBody({ messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_x', content: 'r' }] }] }),
      /^messages\.0\.content\.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_x\./,
    );
    await claude400(
      msgBody({
        messages: [
          { role: 'user', content: 'a' },
          { role: 'assistant', content: [{ type: 'tool_use', id: 'call.1', name: 'f', input: {} }] },
        ],
      }),
      /tool_use\.id: String should match pattern/,
    );
    await claude400(
      msgBody({
        messages: [
          { role: 'user', content: 'a' },
          { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'f', input: '{}' }] },
        ],
      }),
      /tool_use\.input: Input should be a valid dictionary/,
    );
    await claude400(
      msgBody({
        messages: [
          { role: 'user', content: 'a' },
          { role: 'assistant', content: [{ type: 'thinking', thinking: 'x', signature: 'gw1:openai:rs_1:abc' }] },
        ],
      }),
      /Invalid `signature` in `thinking` block/,
    );
    await claude400(msgBody({ thinking: { type: 'enabled', budget_tokens: 500 } }), /budget_tokens: Input should be greater than or equal to 1024/);
    await claude400(msgBody({ stop_sequences: [' '] }), /each stop sequence must contain non-whitespace/);
    await claude400(msgBody({ tools: [{ name: 'bad name', input_schema: { type: 'object' } }] }), /custom\.name: String should match pattern/);
    await claude400(msgBody({ tools: [{ type: 'function', function: { name: 'f' } }] }), /tools\.0\.function\.name: Field required/);
    const big = 'A'.repeat(7 * 1024 * 1024);
    await claude400(
      msgBody({ messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: big } }] }] }),
      /image exceeds 5 MB maximum/,
    );
    await claude400(msgBody(), /anthropic-version: header is required/, { 'anthropic-version': '' });
    const r = await claude(fr.base, msgBody({ model: 'nope-model' }));
    assert.equal(r.status, 404);
    assert.equal((await r.json()).error.type, 'not_found_error');
  });

  test('messages: stop_sequences and max_tokens end the answer with their stop reasons', async () => {
    let j = await (await claude(fr.base, msgBody({ stop_sequences: ['from'] }))).json();
    assert.equal(j.content[0].text, 'Hello ');
    assert.equal(j.stop_reason, 'stop_sequence');
    assert.equal(j.stop_sequence, 'from');
    j = await (await claude(fr.base, msgBody({ max_tokens: 2 }))).json();
    assert.equal(j.content[0].text, 'Hello fr');
    assert.equal(j.stop_reason, 'max_tokens');
    j = await (await claude(fr.base, msgBody({ tools: [WEATHER], tool_choice: { type: 'tool', name: 'get_weather' } }))).json();
    assert.equal(j.stop_reason, 'tool_use');
    assert.deepEqual(j.content[1].input, { city: 'Paris' });
    assert.deepEqual(j.content[1].caller, { type: 'direct' });
    j = await (await claude(fr.base, msgBody({ tools: [WEATHER], messages: [{ role: 'user', content: 'please use tool' }], tool_choice: { type: 'none' } }))).json();
    assert.equal(j.stop_reason, 'end_turn');
  });

  test('messages stream: the exact event sequence with a tool call, split arguments', async () => {
    const r = await claude(fr.base, msgBody({ stream: true, tools: [WEATHER], messages: [{ role: 'user', content: 'use tool get_weather' }] }), { 'x-fake-chunks': '1' });
    assert.equal(r.status, 200);
    const ev = sseEvents(await r.text());
    assert.deepEqual(
      ev.map((e) => e.event),
      [
        'message_start',
        'content_block_start',
        'ping',
        'content_block_delta',
        'content_block_stop',
        'content_block_start',
        'content_block_delta',
        'content_block_delta',
        'content_block_delta',
        'content_block_delta',
        'content_block_stop',
        'message_delta',
        'message_stop',
      ],
    );
    const d = ev.map((e) => JSON.parse(e.data));
    assert.equal(d[0].message.usage.output_tokens, 1);
    assert.deepEqual(d[5].content_block, { type: 'tool_use', id: d[5].content_block.id, name: 'get_weather', input: {}, caller: { type: 'direct' } });
    assert.equal(d[6].delta.partial_json, '', 'the first fragment is empty, as the API sends it');
    assert.equal(d.slice(6, 10).map((x) => x.delta.partial_json).join(''), '{"city":"Paris"}');
    assert.ok(d.slice(7, 10).every((x) => x.delta.partial_json.length > 0));
    assert.equal(d[11].delta.stop_reason, 'tool_use');
    assert.equal(d[11].delta.stop_details, null);
    assert.ok(d[11].usage.output_tokens > 1);
  });

  test('messages stream faults: cut closes after N deltas, stream-error sends event: error', async () => {
    const r = await claude(fr.base, msgBody({ stream: true }), { 'x-fake-fault': 'cut', 'x-fake-cut-after': '1', 'x-fake-chunks': '3' });
    let text = '';
    const reader = r.body.getReader();
    await assert.rejects(async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += Buffer.from(value).toString();
      }
    });
    assert.deepEqual(
      sseEvents(text).map((e) => e.event),
      ['message_start', 'content_block_start', 'ping', 'content_block_delta'],
    );
    const e = await claude(fr.base, msgBody({ stream: true }), { 'x-fake-fault': 'stream-error', 'x-fake-cut-after': '1' });
    const ev = sseEvents(await e.text());
    assert.equal(ev.at(-1).event, 'error');
    assert.deepEqual(JSON.parse(ev.at(-1).data), { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
    assert.ok(!ev.some((x) => x.event === 'message_stop'));
    const f = await claude(fr.base, msgBody(), { 'x-fake-fault': '500' });
    assert.equal(f.status, 500);
    assert.deepEqual((await f.json()).error, { type: 'api_error', message: 'Internal server error' });
  });

  test('responses: raw event sequence with sequence numbers; /responses alias; stream-error', async () => {
    const body = { model: 'gpt-5', input: 'hey', stream: true };
    const r = await post(fr.base, '/responses', body, { 'x-fake-chunks': '2' });
    const ev = sseEvents(await r.text());
    assert.deepEqual(
      ev.map((e) => e.event),
      [
        'response.created',
        'response.in_progress',
        'response.output_item.added',
        'response.content_part.added',
        'response.output_text.delta',
        'response.output_text.delta',
        'response.output_text.done',
        'response.content_part.done',
        'response.output_item.done',
        'response.completed',
      ],
    );
    ev.forEach((e, i) => {
      const d = JSON.parse(e.data);
      assert.equal(d.type, e.event);
      assert.equal(d.sequence_number, i);
    });
    const done = JSON.parse(ev.at(-1).data).response;
    assert.equal(done.status, 'completed');
    assert.equal(done.output[0].content[0].text, 'Hello from fx: hey');
    assert.ok(!ev.some((e) => e.data === '[DONE]'));
    const s = await post(fr.base, '/v1/responses', body, { 'x-fake-fault': 'stream-error', 'x-fake-cut-after': '1' });
    const se = sseEvents(await s.text());
    assert.deepEqual(se.slice(-2).map((e) => e.event), ['error', 'response.failed']);
    assert.deepEqual(se.map((e) => JSON.parse(e.data).sequence_number), se.map((_, i) => i));
    const inc = await (await post(fr.base, '/v1/responses', { model: 'gpt-5', input: 'a long enough question to be cut', max_output_tokens: 16 })).json();
    assert.equal(inc.status, 'completed', '16 tokens = 64 characters fit');
  });

  test('chat: tool_calls on "use tool", streamed in fragments; tool message pairing checked', async () => {
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: WEATHER.input_schema } }];
    const body = { model: 'gpt-4o', tools, messages: [{ role: 'user', content: 'use tool please' }] };
    const j = await (await post(fr.base, '/v1/chat/completions', body)).json();
    assert.equal(j.choices[0].finish_reason, 'tool_calls');
    const tc = j.choices[0].message.tool_calls;
    assert.equal(tc.length, 1);
    assert.equal(tc[0].function.arguments, '{"city":"Paris"}');
    const s = await post(fr.base, '/v1/chat/completions', { ...body, stream: true });
    const chunks = sseData(await s.text()).filter((d) => d !== '[DONE]').map((d) => JSON.parse(d));
    const frags = chunks.flatMap((c) => c.choices[0]?.delta?.tool_calls ?? []);
    assert.equal(frags[0].index, 0);
    assert.equal(frags[0].function.name, 'get_weather');
    assert.equal(frags.map((f) => f.function.arguments).join(''), '{"city":"Paris"}');
    assert.ok(frags.length >= 4);
    const next = await (
      await post(fr.base, '/v1/chat/completions', {
        ...body,
        messages: [...body.messages, j.choices[0].message, { role: 'tool', tool_call_id: tc[0].id, content: 'rainy' }],
      })
    ).json();
    assert.equal(next.choices[0].finish_reason, 'stop');
    assert.equal(next.choices[0].message.content, 'Hello from fx: rainy');
    let r = await post(fr.base, '/v1/chat/completions', { ...body, messages: [...body.messages, j.choices[0].message] });
    assert.equal(r.status, 400);
    assert.match((await r.json()).error.message, /must be followed by tool messages/);
    r = await post(fr.base, '/v1/chat/completions', { ...body, messages: [...body.messages, { role: 'tool', tool_call_id: 'ghost', content: 'x' }] });
    assert.equal(r.status, 400);
    assert.match((await r.json()).error.message, /must be a response to a preceeding message with 'tool_calls'/);
  });

  test('chat: stream-error ends with an error chunk and no [DONE]; 529 is OpenAI-shaped', async () => {
    const s = await post(fr.base, '/v1/chat/completions', { ...chatBodyPlain(), stream: true }, { 'x-fake-fault': 'stream-error', 'x-fake-cut-after': '2' });
    assert.equal(s.status, 200);
    const data = sseData(await s.text());
    assert.equal(data.length, 1 + 2 + 1);
    assert.ok(!data.includes('[DONE]'));
    assert.equal(JSON.parse(data.at(-1)).error.type, 'server_error');
    const r = await post(fr.base, '/v1/chat/completions', chatBodyPlain(), { 'x-fake-fault': '529' });
    assert.equal(r.status, 529);
    assert.equal(r.headers.get('retry-after'), '1');
    assert.equal((await r.json()).error.code, 'server_is_overloaded');
  });

  test('chat-only default: /v1/messages is a Claude-shaped 404, /v1/responses an OpenAI 404; FAKERELAY_FORMATS works', async () => {
    const plain = await startFakerelay(['--key', KEY]);
    try {
      let r = await claude(plain.base, msgBody());
      assert.equal(r.status, 404);
      assert.deepEqual(await r.json(), { type: 'error', error: { type: 'not_found_error', message: 'Not Found' }, request_id: null });
      r = await post(plain.base, '/v1/responses', { model: 'gpt-5', input: 'x' });
      assert.equal(r.status, 404);
      assert.match((await r.json()).error.message, /Invalid URL \(POST \/v1\/responses\)/);
    } finally {
      await plain.stop();
    }
    process.env.FAKERELAY_FORMATS = 'responses';
    const env = await startFakerelay(['--key', KEY, '--models', '*']);
    delete process.env.FAKERELAY_FORMATS;
    try {
      let r = await post(env.base, '/v1/responses', { model: 'gpt-5', input: 'x' });
      assert.equal(r.status, 200);
      await r.arrayBuffer();
      r = await post(env.base, '/v1/chat/completions', chatBodyPlain());
      assert.equal(r.status, 404);
      await r.arrayBuffer();
      r = await fetch(env.base + '/v1/models', { headers: auth });
      assert.equal(r.status, 200, 'the model list is always served');
      await r.arrayBuffer();
    } finally {
      await env.stop();
    }
  });
});

function chatBodyPlain() {
  return { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] };
}
