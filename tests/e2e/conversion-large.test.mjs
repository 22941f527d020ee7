// conversion-large.test.mjs — request bodies over 64 KiB that need converting are decoded
// and encoded off the io thread (libuv's thread pool): the answers must be the same as for
// small bodies, bad large bodies still get a clear 400, and a client leaving while its body
// is being converted loses nothing else.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import Anthropic from '@anthropic-ai/sdk';

import { PROXY_TOKEN, addRelay, readResponse, startFakeRelay, startMetarelay, statLastRequest, fakeStats, stopAll } from './lib/harness.mjs';

const MODEL = 'large-chat-model';

describe('large bodies converted off the io thread', () => {
  const children = [];
  let mr, fr, anthropic;
  // A Claude Code-like history: a long system prompt and many turns, ~200 KB.
  const longText = 'The quick brown fox jumps over the lazy dog. '.repeat(60);
  const messages = [];
  for (let i = 0; i < 60; i++) {
    messages.push({ role: 'user', content: `turn ${i}: ${longText}` });
    messages.push({ role: 'assistant', content: `answer ${i}: ${longText}` });
  }
  messages.push({ role: 'user', content: 'last question' });
  const system = [{ type: 'text', text: longText.repeat(10), cache_control: { type: 'ephemeral' } }];

  before(async () => {
    mr = await startMetarelay();
    children.push(mr);
    fr = await startFakeRelay({ name: 'largechat', models: [MODEL], args: ['--formats', 'chat'] });
    children.push(fr);
    await addRelay(mr, fr, undefined, { formats: ['chat'] });
    anthropic = new Anthropic({ baseURL: mr.base, apiKey: PROXY_TOKEN, maxRetries: 0, timeout: 30000 });
  });

  after(async () => {
    await stopAll(children);
  });

  test('the body is over the threshold', () => {
    assert.ok(JSON.stringify({ model: MODEL, system, messages }).length > 150 * 1024);
  });

  test('non-stream: converted to Chat and back', async () => {
    const msg = await anthropic.messages.create({ model: MODEL, max_tokens: 64, system, messages });
    assert.equal(msg.type, 'message');
    assert.match(msg.content[0].text, /Hello from largechat: last question/);
    const last = statLastRequest(await fakeStats(fr));
    assert.equal(last.body.messages.length, messages.length + 1, 'system + every turn reached the Chat upstream');
    assert.equal(last.body.messages[0].role, 'system');
  });

  test('stream: converted event by event', async () => {
    const msg = await anthropic.messages
      .stream({ model: MODEL, max_tokens: 64, system, messages })
      .finalMessage();
    assert.match(msg.content[0].text, /Hello from largechat: last question/);
    assert.equal(msg.stop_reason, 'end_turn');
  });

  test('several at once: every answer arrives', async () => {
    const all = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        anthropic.messages.create({
          model: MODEL,
          max_tokens: 64,
          system,
          messages: [...messages.slice(0, -1), { role: 'user', content: `parallel ${i}` }],
        }),
      ),
    );
    all.forEach((m, i) => assert.match(m.content[0].text, new RegExp(`parallel ${i}$`)));
  });

  test('a bad large body still gets a clear 400 in Claude shape', async () => {
    const bad = [...messages.slice(0, -1), { role: 'user', content: [{ type: 'hologram', data: 'x' }] }];
    const r = await readResponse(
      await mr.proxyFetch('/v1/messages', {
        headers: { 'anthropic-version': '2023-06-01' },
        body: { model: MODEL, max_tokens: 64, system, messages: bad },
      }),
    );
    assert.equal(r.status, 400, r.text);
    assert.equal(r.body.type, 'error');
    assert.match(r.body.error.message, /hologram|content/i);
  });

  test('a client that leaves while its body is converted: the gateway goes on serving', async () => {
    const ac = new AbortController();
    const p = mr.proxyFetch('/v1/messages', {
      headers: { 'anthropic-version': '2023-06-01' },
      body: { model: MODEL, max_tokens: 64, stream: true, system, messages },
      signal: ac.signal,
    });
    setTimeout(() => ac.abort(), 1);
    await p.then((res) => res.body?.cancel()).catch(() => {});
    await sleep(100);
    const msg = await anthropic.messages.create({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: 'still there?' }] });
    assert.match(msg.content[0].text, /still there\?/);
  });
});
