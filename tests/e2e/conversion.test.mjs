// conversion.test.mjs — metarelay's format conversion seen by the official SDKs. Three
// emulated relays sit behind one metarelay: one speaks only OpenAI Chat, one only Claude
// Messages, one only OpenAI Responses, each with its own model name so the route is
// known. The `openai` SDK (chat.completions, responses) and `@anthropic-ai/sdk`
// (messages) talk to each of them, whole and streamed — text, tool round trips with
// parallel calls, images, thinking/reasoning — and the SDKs' own stream helpers
// (finalChatCompletion, finalResponse, finalMessage) must assemble the answer. What
// metarelay sent upstream is read back from fakerelay's /_fake/stats. Then the failures:
// bad inputs (400 in the client's shape), upstream errors (shape converted, text kept),
// a stream failing midway (an error event in the client's format, the SDK throws),
// count_tokens (forwarded or estimated), legacy completions to a Claude relay, and the
// tool-name mapping (a 70-character name, a Codex `custom` tool).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import Anthropic from '@anthropic-ai/sdk';

import {
  PROXY_TOKEN,
  addRelay,
  fakeReset,
  fakeStats,
  logsFor,
  parseSSE,
  readResponse,
  restartFakeRelay,
  startFakeRelay,
  startMetarelay,
  statLastRequest,
  stopAll,
} from './lib/harness.mjs';

// One relay per upstream format; `name` is echoed by fakerelay ("Hello from NAME: …").
const UPSTREAMS = {
  chat: { name: 'upchat', model: 'gpt-up-chat', site: { formats: ['chat'] } },
  messages: { name: 'upmsg', model: 'claude-up-msg', site: { platform: 'claude' } }, // platform default
  responses: { name: 'upresp', model: 'gpt-up-resp', site: { formats: ['responses'] } },
};
const FORMATS = Object.keys(UPSTREAMS);

// The same two tools in each API's shape.
const SCHEMA_W = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
const SCHEMA_T = { type: 'object', properties: { zone: { type: 'string', enum: ['UTC', 'CET'] } }, required: ['zone'] };
const TOOLS = {
  chat: [
    { type: 'function', function: { name: 'get_weather', description: 'Weather of a city', parameters: SCHEMA_W } },
    { type: 'function', function: { name: 'get_time', description: 'Time in a zone', parameters: SCHEMA_T } },
  ],
  responses: [
    { type: 'function', name: 'get_weather', description: 'Weather of a city', parameters: SCHEMA_W, strict: false },
    { type: 'function', name: 'get_time', description: 'Time in a zone', parameters: SCHEMA_T, strict: false },
  ],
  messages: [
    { name: 'get_weather', description: 'Weather of a city', input_schema: SCHEMA_W },
    { name: 'get_time', description: 'Time in a zone', input_schema: SCHEMA_T },
  ],
};
const ARGS = { get_weather: { city: 'Paris' }, get_time: { zone: 'UTC' } };
const LONG = `lookup_${'x'.repeat(55)}_weather`; // a 70-character tool name
const RESULTS = { get_weather: 'sunny', get_time: 'noon', [LONG]: 'sunny' };

// A 1×1 PNG.
const PNG_B64 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
const PNG_URL = 'https://example.com/cat.png';

const tokens = (s) => Math.max(1, Math.ceil(s.length / 4));

/** Rejects unless `p` fails with an SDK error of `status`; runs `check(err)` too. */
async function rejectsWith(p, status, check = () => {}) {
  await assert.rejects(p, (e) => {
    assert.equal(e.status, status, `expected ${status}, got ${e.status}: ${e.message}`);
    check(e);
    return true;
  });
}

// ------------------------------------------------------------------------------------
// Clients: one adapter per API, so every test body runs for every client. Each answer is
// reduced to {text, calls:[{id,name,args}], finish, usage:{in,out}, reasoning, raw}.

function chatView(c) {
  const m = c.choices[0].message;
  return {
    text: m.content ?? '',
    calls: (m.tool_calls ?? []).map((t) => ({ id: t.id, name: t.function.name, args: JSON.parse(t.function.arguments) })),
    finish: c.choices[0].finish_reason,
    usage: c.usage && { in: c.usage.prompt_tokens, out: c.usage.completion_tokens, total: c.usage.total_tokens },
    reasoning: m.reasoning_content ?? null,
    raw: c,
  };
}

function responsesView(r) {
  const calls = r.output.filter((o) => o.type === 'function_call');
  const reasoning = r.output.find((o) => o.type === 'reasoning');
  return {
    text: r.output_text,
    calls: calls.map((c) => ({ id: c.call_id, name: c.name, args: JSON.parse(c.arguments) })),
    finish: r.status === 'completed' ? (calls.length ? 'tool_calls' : 'stop') : r.status,
    usage: r.usage && { in: r.usage.input_tokens, out: r.usage.output_tokens, total: r.usage.total_tokens },
    reasoning: reasoning ? reasoning.summary.map((s) => s.text).join('') : null,
    raw: r,
  };
}

function messagesView(m) {
  const calls = m.content.filter((b) => b.type === 'tool_use');
  const thinking = m.content.find((b) => b.type === 'thinking');
  return {
    text: m.content
      .filter((b) => b.type === 'text')
      .map((b) => b.text)
      .join(''),
    calls: calls.map((c) => ({ id: c.id, name: c.name, args: c.input })),
    finish: m.stop_reason,
    usage: m.usage && { in: m.usage.input_tokens, out: m.usage.output_tokens, total: m.usage.input_tokens + m.usage.output_tokens },
    reasoning: thinking ? thinking.thinking : null,
    raw: m,
  };
}

// Finish reasons per client: text, tool calls.
const FINISH = {
  chat: { text: 'stop', tools: 'tool_calls' },
  responses: { text: 'stop', tools: 'tool_calls' },
  messages: { text: 'end_turn', tools: 'tool_use' },
};

function makeClients(mr) {
  const openai = mr.openai();
  const anthropic = new Anthropic({ apiKey: PROXY_TOKEN, baseURL: mr.base, maxRetries: 0, timeout: 30000 });
  return {
    openai,
    anthropic,
    chat: {
      /** One turn; `extra` adds request fields. */
      async send({ model, messages, stream, extra = {} }) {
        const body = { model, messages, ...extra };
        if (stream) {
          const s = openai.chat.completions.stream({ ...body, stream_options: { include_usage: true } });
          // reasoning_content is not a field the SDK knows: its accumulator keeps only the
          // last fragment, so the deltas are joined here.
          let reasoning = '';
          s.on('chunk', (c) => (reasoning += c.choices[0]?.delta?.reasoning_content ?? ''));
          const v = chatView(await s.finalChatCompletion());
          return { ...v, reasoning: reasoning || null };
        }
        return chatView(await openai.chat.completions.create(body));
      },
      user: (text) => [{ role: 'user', content: text }],
      userImage: (text, url) => [{ role: 'user', content: [{ type: 'text', text }, { type: 'image_url', image_url: { url } }] }],
      tools: TOOLS.chat,
      /** History after an answer with calls, plus one result per call. */
      followUp(messages, view) {
        const msg = view.raw.choices[0].message;
        return [
          ...messages,
          { role: 'assistant', content: msg.content, tool_calls: msg.tool_calls },
          ...view.calls.map((c) => ({ role: 'tool', tool_call_id: c.id, content: RESULTS[c.name] })),
        ];
      },
      thinking: { reasoning_effort: 'low' },
    },
    responses: {
      async send({ model, messages, stream, extra = {} }) {
        const body = { model, input: messages, ...extra };
        if (stream) return responsesView(await openai.responses.stream(body).finalResponse());
        return responsesView(await openai.responses.create(body));
      },
      user: (text) => [{ role: 'user', content: [{ type: 'input_text', text }] }],
      userImage: (text, url) => [
        { role: 'user', content: [{ type: 'input_text', text }, { type: 'input_image', image_url: url, detail: 'auto' }] },
      ],
      tools: TOOLS.responses,
      followUp(input, view) {
        return [
          ...input,
          ...view.raw.output.filter((o) => o.type !== 'message'),
          ...view.calls.map((c) => ({ type: 'function_call_output', call_id: c.id, output: RESULTS[c.name] })),
        ];
      },
      thinking: { reasoning: { effort: 'low', summary: 'auto' } },
    },
    messages: {
      async send({ model, messages, stream, extra = {} }) {
        const body = { model, max_tokens: 4096, messages, ...extra };
        if (stream) return messagesView(await anthropic.messages.stream(body).finalMessage());
        return messagesView(await anthropic.messages.create(body));
      },
      user: (text) => [{ role: 'user', content: text }],
      userImage: (text, url) => [
        {
          role: 'user',
          content: [
            { type: 'text', text },
            url.startsWith('data:')
              ? { type: 'image', source: { type: 'base64', media_type: 'image/png', data: url.slice(url.indexOf(',') + 1) } }
              : { type: 'image', source: { type: 'url', url } },
          ],
        },
      ],
      tools: TOOLS.messages,
      followUp(messages, view) {
        return [
          ...messages,
          { role: 'assistant', content: view.raw.content },
          { role: 'user', content: view.calls.map((c) => ({ type: 'tool_result', tool_use_id: c.id, content: RESULTS[c.name] })) },
        ];
      },
      thinking: { thinking: { type: 'enabled', budget_tokens: 1024 } },
    },
  };
}

/** The last request body the relay got. */
async function lastBody(fr) {
  return statLastRequest(await fakeStats(fr)).body;
}

/** The parts of an upstream request that carry an image, in any of the three shapes. */
function upstreamImages(body) {
  const found = [];
  const walk = (v) => {
    if (!v || typeof v !== 'object') return;
    if (v.type === 'image_url' || v.type === 'input_image' || v.type === 'image') found.push(v);
    for (const x of Object.values(v)) walk(x);
  };
  walk(body);
  return found;
}

describe('format conversion (official SDKs × Chat-only, Messages-only, Responses-only relays)', () => {
  let mr;
  const relays = {};
  const children = [];
  let clients;

  before(async () => {
    for (const fmt of FORMATS) {
      const u = UPSTREAMS[fmt];
      relays[fmt] = await startFakeRelay({ name: u.name, models: [u.model], args: ['--formats', fmt, '--chunks', '3'] });
      children.push(relays[fmt]);
    }
    mr = await startMetarelay();
    children.push(mr);
    for (const fmt of FORMATS) await addRelay(mr, relays[fmt], undefined, UPSTREAMS[fmt].site);
    clients = makeClients(mr);
  });

  after(async () => {
    await stopAll(children);
  });

  // ---------------------------------------------------------------- the matrix

  for (const client of FORMATS) {
    for (const up of FORMATS) {
      const { model, name } = UPSTREAMS[up];
      const label = `${client} client → ${up} upstream`;

      test(`${label}: text turn, whole and streamed, usage and proxy-log tokens`, async () => {
        const cl = clients[client];
        const want = `Hello from ${name}: Say hi`;
        for (const stream of [false, true]) {
          const v = await cl.send({ model, messages: cl.user('Say hi'), stream });
          assert.equal(v.text, want, `stream=${stream}`);
          assert.deepEqual(v.calls, []);
          assert.equal(v.finish, FINISH[client].text, `stream=${stream}`);
          assert.equal(v.usage.out, tokens(want), `output tokens, stream=${stream}: ${JSON.stringify(v.usage)}`);
          assert.equal(v.usage.in, tokens('Say hi'), `input tokens, stream=${stream}: ${JSON.stringify(v.usage)}`);
          assert.equal(v.usage.total, v.usage.in + v.usage.out);
        }
        // The usage row of a converted request records the tokens (whole and streamed).
        for (const stream of [false, true]) {
          const res = await mr.proxyFetch(client === 'chat' ? '/v1/chat/completions' : client === 'responses' ? '/v1/responses' : '/v1/messages', {
            headers: client === 'messages' ? { 'anthropic-version': '2023-06-01' } : {},
            body:
              client === 'chat'
                ? { model, messages: cl.user('Say hi'), stream, ...(stream ? { stream_options: { include_usage: true } } : {}) }
                : client === 'responses'
                  ? { model, input: 'Say hi', stream }
                  : { model, max_tokens: 100, messages: cl.user('Say hi'), stream },
          });
          assert.equal(res.status, 200);
          await res.text();
          const rows = await logsFor(mr, res.headers.get('x-request-id'));
          assert.equal(rows.length, 1);
          assert.equal(rows[0].status, 'success');
          assert.equal(rows[0].promptTokens, tokens('Say hi'), JSON.stringify(rows[0]));
          assert.equal(rows[0].completionTokens, tokens(want), JSON.stringify(rows[0]));
          assert.equal(rows[0].totalTokens, tokens('Say hi') + tokens(want));
        }
      });

      test(`${label}: tool round trip with parallel calls, whole and streamed`, async () => {
        const cl = clients[client];
        for (const stream of [false, true]) {
          const first = cl.user('weather and time, use tools');
          const v = await cl.send({ model, messages: first, stream, extra: { tools: cl.tools } });
          assert.equal(v.finish, FINISH[client].tools, `stream=${stream}`);
          assert.deepEqual(
            v.calls.map((c) => [c.name, c.args]),
            [
              ['get_weather', ARGS.get_weather],
              ['get_time', ARGS.get_time],
            ],
            `stream=${stream}`,
          );
          assert.notEqual(v.calls[0].id, v.calls[1].id);
          assert.ok(v.usage.in > 0 && v.usage.out > 0, JSON.stringify(v.usage));
          // The tools reached the upstream in its own shape.
          const sent = await lastBody(relays[up]);
          const upNames =
            up === 'chat' ? sent.tools.map((t) => t.function.name) : sent.tools.map((t) => t.name);
          assert.deepEqual(upNames, ['get_weather', 'get_time']);

          const history = cl.followUp(first, v);
          const w = await cl.send({ model, messages: history, stream, extra: { tools: cl.tools } });
          assert.equal(w.finish, FINISH[client].text, `after the results, stream=${stream}`);
          assert.deepEqual(w.calls, []);
          assert.ok(w.text.startsWith(`Hello from ${name}: `), w.text);
          assert.ok(w.text.includes('sunny') && w.text.includes('noon'), `the tool results reach the upstream: ${w.text}`);
        }
        // One call only: `use tool get_time` names it.
        const one = await cl.send({ model, messages: cl.user('use tool get_time'), stream: true, extra: { tools: cl.tools } });
        assert.deepEqual(
          one.calls.map((c) => [c.name, c.args]),
          [['get_time', ARGS.get_time]],
        );
      });

      test(`${label}: image input (base64${up === 'chat' && client === 'messages' ? '' : ' and URL'}), whole and streamed`, async () => {
        const cl = clients[client];
        const urls = [`data:image/png;base64,${PNG_B64}`, PNG_URL];
        for (const url of urls) {
          for (const stream of [false, true]) {
            const v = await cl.send({ model, messages: cl.userImage('Describe this image', url), stream });
            assert.equal(v.text, `Hello from ${name}: Describe this image`, `url=${url.slice(0, 20)} stream=${stream}`);
            const imgs = upstreamImages(await lastBody(relays[up]));
            assert.equal(imgs.length, 1, 'one image part upstream');
            const img = imgs[0];
            const where = JSON.stringify(img);
            if (up === 'messages') {
              assert.equal(img.type, 'image');
              if (url.startsWith('data:')) assert.deepEqual(img.source, { type: 'base64', media_type: 'image/png', data: PNG_B64 });
              else assert.deepEqual(img.source, { type: 'url', url: PNG_URL });
            } else if (up === 'chat') {
              assert.equal(img.type, 'image_url', where);
              assert.equal(img.image_url.url, url);
            } else {
              assert.equal(img.type, 'input_image', where);
              assert.equal(img.image_url, url);
            }
          }
        }
      });

      test(`${label}: thinking / reasoning request, whole and streamed`, async () => {
        const cl = clients[client];
        for (const stream of [false, true]) {
          const v = await cl.send({ model, messages: cl.user('Think about it'), stream, extra: cl.thinking });
          assert.equal(v.text, `Hello from ${name}: Think about it`);
          assert.equal(v.finish, FINISH[client].text);
          const sent = await lastBody(relays[up]);
          // What the upstream was asked.
          if (up === 'chat') {
            assert.equal(sent.reasoning_effort, 'low', JSON.stringify(sent));
            assert.equal(sent.thinking, undefined);
          } else if (up === 'responses') {
            assert.equal(sent.reasoning?.effort, 'low', JSON.stringify(sent));
          } else {
            assert.equal(sent.thinking?.type, 'enabled', JSON.stringify(sent));
            assert.ok(sent.thinking.budget_tokens >= 1024 && sent.thinking.budget_tokens < sent.max_tokens, JSON.stringify(sent));
          }
          // What came back: the upstream's thinking, as the client's reasoning.
          if (up === 'chat') assert.equal(v.reasoning, null, 'a Chat relay sends no reasoning here');
          else assert.equal(v.reasoning, `${name} is thinking about: Think about it`, `stream=${stream}`);
          if (client === 'messages' && up !== 'chat') {
            const block = v.raw.content.find((b) => b.type === 'thinking');
            assert.ok(block.signature && block.signature.length > 0, 'a thinking block carries a signature');
          }
        }
      });
    }
  }

  // The replay of thinking across a tool round trip (what Claude Code and Codex do).
  for (const up of ['messages', 'responses']) {
    test(`messages client → ${up} upstream: thinking + tool call, replayed with the tool result`, async () => {
      const cl = clients.messages;
      const { model, name } = UPSTREAMS[up];
      for (const stream of [false, true]) {
        const first = cl.user('What is the weather? use tool get_weather');
        const extra = { tools: cl.tools, ...cl.thinking };
        if (up === 'responses') extra.tools = cl.tools;
        const v = await cl.send({ model, messages: first, stream, extra });
        assert.deepEqual(
          v.raw.content.map((b) => b.type),
          ['thinking', 'text', 'tool_use'],
        );
        const w = await cl.send({ model, messages: cl.followUp(first, v), stream, extra });
        assert.equal(w.finish, 'end_turn');
        assert.equal(w.text, `Hello from ${name}: sunny`);
      }
    });
  }

  // ---------------------------------------------------------------- what went upstream

  test('a Claude client to a Chat upstream: thinking, cache_control, $schema and top_k are not sent', async () => {
    const { model } = UPSTREAMS.chat;
    const m = await clients.anthropic.messages.create({
      model,
      max_tokens: 2048,
      system: [{ type: 'text', text: 'Be terse.', cache_control: { type: 'ephemeral' } }],
      thinking: { type: 'enabled', budget_tokens: 1024 },
      top_k: 5,
      tools: [
        {
          name: 'get_weather',
          description: 'Weather of a city',
          input_schema: { $schema: 'http://json-schema.org/draft-07/schema#', ...SCHEMA_W },
          cache_control: { type: 'ephemeral' },
        },
      ],
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Say hi', cache_control: { type: 'ephemeral' } }] }],
    });
    assert.equal(messagesView(m).text, 'Hello from upchat: Say hi');
    const sent = await lastBody(relays.chat);
    const text = JSON.stringify(sent);
    for (const gone of ['cache_control', '$schema', 'thinking', 'top_k', 'budget_tokens'])
      assert.ok(!text.includes(gone), `${gone} sent to a Chat upstream: ${text}`);
    assert.deepEqual(sent.messages[0], { role: 'system', content: 'Be terse.' });
    assert.equal(sent.reasoning_effort, 'low');
    assert.deepEqual(sent.tools[0].function.parameters, SCHEMA_W);
  });

  test('an OpenAI Chat client to a Claude upstream: system lifted, max_tokens set, no stream_options', async () => {
    const { model } = UPSTREAMS.messages;
    const s = clients.openai.chat.completions.stream({
      model,
      messages: [
        { role: 'system', content: 'Be terse.' },
        { role: 'user', content: 'Say hi' },
      ],
      stream_options: { include_usage: true },
      stop: ['\n\nHuman:'],
    });
    const c = await s.finalChatCompletion();
    assert.equal(c.choices[0].message.content, 'Hello from upmsg: Say hi');
    const sent = await lastBody(relays.messages);
    assert.equal(sent.stream, true);
    assert.equal(sent.stream_options, undefined);
    assert.ok(Number.isInteger(sent.max_tokens) && sent.max_tokens > 0);
    assert.ok(JSON.stringify(sent.system).includes('Be terse.'));
    assert.ok(sent.messages.every((m) => m.role !== 'system'));
    assert.deepEqual(sent.stop_sequences, ['\n\nHuman:']);
  });

  test('JSON mode to a Claude upstream (the tool trick): the client gets text and "stop", whole and streamed', async () => {
    const { model } = UPSTREAMS.messages;
    for (const stream of [false, true]) {
      const v = await clients.chat.send({ model, messages: clients.chat.user('give json'), stream, extra: { response_format: { type: 'json_object' } } });
      const sent = await lastBody(relays.messages);
      assert.deepEqual(sent.tool_choice, { type: 'tool', name: 'json_tool_call' }, 'the synthetic tool is forced upstream');
      assert.equal(v.finish, 'stop', `stream=${stream}`);
      assert.deepEqual(v.calls, [], `no json_tool_call reaches the client, stream=${stream}`);
      // fakerelay answers text and the forced call; the call's input is the JSON.
      assert.ok(v.text.endsWith('{"city":"Paris"}'), `stream=${stream}: ${v.text}`);
    }
    const r = await clients.openai.responses.stream({ model, input: 'give json', text: { format: { type: 'json_object' } } }).finalResponse();
    assert.equal(r.status, 'completed');
    assert.equal(r.output.filter((o) => o.type === 'function_call').length, 0);
    assert.ok(r.output_text.endsWith('{"city":"Paris"}'), r.output_text);
  });

  // ---------------------------------------------------------------- bad inputs

  // A converting route for each client (pass-through would leave validation to the upstream).
  const CONVERTING = { chat: 'messages', responses: 'chat', messages: 'chat' };

  test('bad inputs get a 400 in the client\'s shape before any upstream is called', async () => {
    const big = 'A'.repeat(((3 * 1024 * 1024) / 3) * 4); // a 3 MiB image, in base64
    const cases = {
      chat: [
        ['tool result without its call', { messages: [{ role: 'user', content: 'hi' }, { role: 'tool', tool_call_id: 'call_x', content: 'r' }] }],
        ['empty content array', { messages: [{ role: 'user', content: [] }] }],
        ['unknown content type', { messages: [{ role: 'user', content: [{ type: 'hologram', data: 'x' }] }] }],
        ['3 MB image', { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${big}` } }] }] }],
      ],
      responses: [
        ['tool result without its call', { input: [{ role: 'user', content: 'hi' }, { type: 'function_call_output', call_id: 'call_x', output: 'r' }] }],
        ['empty content array', { input: [{ role: 'user', content: [] }] }],
        ['unknown content type', { input: [{ role: 'user', content: [{ type: 'input_hologram', data: 'x' }] }] }],
        ['3 MB image', { input: [{ role: 'user', content: [{ type: 'input_image', image_url: `data:image/png;base64,${big}` }] }] }],
      ],
      messages: [
        [
          'tool result without its call',
          { messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_x', content: 'r' }] }] },
        ],
        ['empty content array', { messages: [{ role: 'user', content: [] }] }],
        ['unknown content type', { messages: [{ role: 'user', content: [{ type: 'hologram', data: 'x' }] }] }],
        [
          '3 MB image',
          { messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: big } }] }] },
        ],
      ],
    };
    for (const client of FORMATS) {
      const up = CONVERTING[client];
      const { model } = UPSTREAMS[up];
      await fakeReset(relays[up]);
      for (const [what, body] of cases[client]) {
        let p;
        if (client === 'chat') p = clients.openai.chat.completions.create({ model, ...body });
        else if (client === 'responses') p = clients.openai.responses.create({ model, ...body });
        else p = clients.anthropic.messages.create({ model, max_tokens: 100, ...body });
        await rejectsWith(p, 400, (e) => {
          if (client === 'messages') {
            assert.equal(e.error?.type, 'error', `${what}: not Claude-shaped: ${JSON.stringify(e.error)}`);
            assert.equal(e.error.error.type, 'invalid_request_error');
            assert.ok(e.error.error.message.length > 10, what);
          } else {
            assert.equal(e.error?.type, 'invalid_request_error', `${what}: not OpenAI-shaped: ${JSON.stringify(e.error)}`);
            assert.ok(e.error.message.length > 10, what);
          }
        });
      }
      const stats = await fakeStats(relays[up]);
      assert.equal(stats.requests_total, 0, `${client}: a bad input reached the ${up} relay`);
    }
  });

  // ---------------------------------------------------------------- upstream errors

  test('an upstream 400 from a Claude relay reaches OpenAI clients as an OpenAI 400 with its text', async () => {
    const { model } = UPSTREAMS.messages;
    const dup = [TOOLS.chat[0], TOOLS.chat[0]];
    await rejectsWith(
      clients.openai.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], tools: dup }),
      400,
      (e) => {
        assert.equal(e.error.type, 'invalid_request_error');
        assert.match(e.error.message, /Tool names must be unique/);
        assert.ok('code' in e.error && 'param' in e.error);
      },
    );
    // (A Responses client's duplicate tools are merged by the decoder: additional_tools
    // may repeat a tool. A tool_choice naming no tool is the Claude relay's to refuse.)
    await rejectsWith(
      clients.openai.responses.create({ model, input: 'hi', tools: [TOOLS.responses[0]], tool_choice: { type: 'function', name: 'nope' } }),
      400,
      (e) => {
        assert.equal(e.error.type, 'invalid_request_error');
        assert.match(e.error.message, /Tool 'nope' not found/);
      },
    );
    assert.deepEqual((await lastBody(relays.messages)).tool_choice, { type: 'tool', name: 'nope' }, 'the upstream answered it');
  });

  test('Claude Code\'s mid-conversation system message: the Claude relay\'s 400 text reaches a Claude client verbatim', async () => {
    const { model } = UPSTREAMS.messages;
    await rejectsWith(
      clients.anthropic.messages.create({
        model,
        max_tokens: 64,
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'hello' },
          { role: 'system', content: 'be brief' },
        ],
      }),
      400,
      (e) => {
        assert.equal(e.error.type, 'error');
        assert.equal(e.error.error.type, 'invalid_request_error');
        assert.equal(
          e.error.error.message,
          'messages.2.role: Unexpected role "system". The Messages API accepts a top-level `system` parameter, not "system" as an input message role.',
        );
      },
    );
  });

  // ---------------------------------------------------------------- count_tokens

  test('count_tokens: forwarded to a Messages relay, estimated locally for a Chat-only model', async () => {
    const params = { messages: [{ role: 'user', content: 'count these words please' }] };
    const fwd = await clients.anthropic.messages.countTokens({ model: UPSTREAMS.messages.model, ...params }).withResponse();
    assert.equal(fwd.data.input_tokens, tokens('count these words please'));
    assert.equal(fwd.response.headers.get('x-metarelay-estimate'), null);
    assert.equal(statLastRequest(await fakeStats(relays.messages)).raw.target.split('?')[0], '/v1/messages/count_tokens');

    await fakeReset(relays.chat);
    const est = await clients.anthropic.messages.countTokens({ model: UPSTREAMS.chat.model, ...params }).withResponse();
    assert.equal(est.response.headers.get('x-metarelay-estimate'), 'true');
    assert.ok(Number.isInteger(est.data.input_tokens) && est.data.input_tokens >= tokens('count these words please'));
    assert.equal((await fakeStats(relays.chat)).requests_total, 0, 'the estimate calls no upstream');
  });

  // ---------------------------------------------------------------- legacy completions

  test('legacy /v1/completions against a Messages-only relay, whole and streamed', async () => {
    const { model } = UPSTREAMS.messages;
    const c = await clients.openai.completions.create({ model, prompt: 'Say hi', max_tokens: 50 });
    assert.equal(c.object, 'text_completion');
    assert.equal(c.choices[0].text, 'Hello from upmsg: Say hi');
    assert.equal(c.choices[0].finish_reason, 'stop');
    assert.equal(c.usage.completion_tokens, tokens('Hello from upmsg: Say hi'));
    assert.equal(c.usage.prompt_tokens, tokens('Say hi'));
    const sent = await lastBody(relays.messages);
    assert.deepEqual(sent.messages, [{ role: 'user', content: 'Say hi' }].map((m) => ({ ...m, content: sent.messages[0].content })));
    assert.equal(sent.max_tokens, 50);

    const stream = await clients.openai.completions.create({ model, prompt: 'Say hi', max_tokens: 50, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let finish = null;
    let usage = null;
    for await (const ch of stream) {
      if (ch.choices?.[0]) {
        text += ch.choices[0].text;
        finish = ch.choices[0].finish_reason ?? finish;
      }
      if (ch.usage) usage = ch.usage;
    }
    assert.equal(text, 'Hello from upmsg: Say hi');
    assert.equal(finish, 'stop');
    assert.equal(usage?.completion_tokens, tokens('Hello from upmsg: Say hi'));
  });

  // ---------------------------------------------------------------- tool names mapped back

  test('a 70-character tool name is shortened upstream and mapped back, whole and streamed', async () => {
    assert.equal(LONG.length, 70);
    const pairs = [
      ['messages', 'chat'],
      ['messages', 'responses'],
      ['chat', 'responses'],
      ['responses', 'chat'],
    ];
    for (const [client, up] of pairs) {
      const cl = clients[client];
      const { model, name } = UPSTREAMS[up];
      const tools =
        client === 'chat'
          ? [{ type: 'function', function: { name: LONG, parameters: SCHEMA_W } }]
          : client === 'responses'
            ? [{ type: 'function', name: LONG, parameters: SCHEMA_W, strict: false }]
            : [{ name: LONG, input_schema: SCHEMA_W }];
      for (const stream of [false, true]) {
        const first = cl.user('use tool please');
        const v = await cl.send({ model, messages: first, stream, extra: { tools } });
        const sent = await lastBody(relays[up]);
        const upName = up === 'chat' ? sent.tools[0].function.name : sent.tools[0].name;
        assert.ok(upName.length <= 64 && upName !== LONG, `${client}→${up}: sent upstream as ${upName}`);
        assert.deepEqual(
          v.calls.map((c) => [c.name, c.args]),
          [[LONG, { city: 'Paris' }]],
          `${client}→${up} stream=${stream}`,
        );
        // The history carries the client's name; the upstream gets the short one again.
        const hist = cl.followUp(first, v);
        const w = await cl.send({ model, messages: hist, stream, extra: { tools } });
        assert.equal(w.text, `Hello from ${name}: sunny`);
        const again = await lastBody(relays[up]);
        assert.ok(!JSON.stringify(again).includes(LONG), 'the long name never goes upstream');
      }
    }
  });

  test('a Codex custom tool (apply_patch) through a Chat upstream comes back as a custom_tool_call', async () => {
    const { model } = UPSTREAMS.chat;
    const tools = [
      {
        type: 'custom',
        name: 'apply_patch',
        description: 'Apply a patch',
        format: { type: 'grammar', syntax: 'lark', definition: 'start: /.+/' },
      },
      TOOLS.responses[0],
    ];
    const input = [{ role: 'user', content: [{ type: 'input_text', text: 'use tool apply_patch' }] }];
    const whole = await clients.openai.responses.create({ model, input, tools });
    const sent = await lastBody(relays.chat);
    assert.equal(sent.tools[0].function.name, 'apply_patch');
    assert.deepEqual(Object.keys(sent.tools[0].function.parameters.properties), ['input']);

    const events = [];
    const s = clients.openai.responses.stream({ model, input, tools });
    s.on('event', (e) => events.push(e.type));
    const streamed = await s.finalResponse();
    for (const r of [whole, streamed]) {
      const calls = r.output.filter((o) => o.type === 'custom_tool_call');
      assert.equal(calls.length, 1, JSON.stringify(r.output));
      assert.equal(calls[0].name, 'apply_patch');
      assert.equal(calls[0].input, 'Paris', 'the {"input": …} wrapper is removed');
      assert.ok(calls[0].call_id);
      assert.equal(r.output.filter((o) => o.type === 'function_call').length, 0);
    }
    assert.ok(events.includes('response.custom_tool_call_input.delta'), events.join(','));
    assert.ok(events.includes('response.custom_tool_call_input.done'), events.join(','));
    assert.ok(!events.includes('response.function_call_arguments.delta'), events.join(','));

    // Round trip: the custom call and its output go back as a function call + result.
    const call = whole.output.find((o) => o.type === 'custom_tool_call');
    const next = await clients.openai.responses.create({
      model,
      tools,
      input: [...input, call, { type: 'custom_tool_call_output', call_id: call.call_id, output: 'patched' }],
    });
    assert.equal(next.output_text, 'Hello from upchat: patched');
    const back = await lastBody(relays.chat);
    const asst = back.messages.find((m) => m.role === 'assistant');
    assert.equal(asst.tool_calls[0].function.name, 'apply_patch');
    assert.deepEqual(JSON.parse(asst.tool_calls[0].function.arguments), { input: 'Paris' });
  });
});

// ---------------------------------------------------------------- a stream failing midway

describe('format conversion: an upstream stream failing midway', () => {
  let mr;
  const children = [];
  let clients;
  const ERR = { chat: 'err-up-chat', messages: 'claude-err-up-msg', responses: 'err-up-resp' };

  before(async () => {
    // Every request here fails on purpose: cooldowns as short as possible, so the channel
    // health these failures build up never decides whether a later test is even attempted.
    mr = await startMetarelay({ TOKEN_ROUTER_FAILURE_COOLDOWN_BASE_SEC: '0.001', TOKEN_ROUTER_FAILURE_COOLDOWN_MAX_SEC: '0.001' });
    children.push(mr);
    const registered = [];
    // Registered while healthy (the fault would break /v1/models too), then restarted
    // on the same port with the fault: x-fake-fault is not forwarded by metarelay.
    for (const fmt of FORMATS) {
      const fr = await startFakeRelay({ name: `err${fmt}`, models: [ERR[fmt]], args: ['--formats', fmt, '--chunks', '4'] });
      await addRelay(mr, fr, undefined, { formats: [fmt] });
      registered.push(fr);
    }
    for (const fr of registered) children.push(await restartFakeRelay(fr, { fault: 'stream-error' }));
    clients = makeClients(mr);
  });

  after(async () => {
    await stopAll(children);
  });

  for (const client of FORMATS) {
    for (const up of FORMATS) {
      test(`${client} client ← ${up} upstream failing mid-stream: the SDK throws, no clean finish`, async () => {
        const model = ERR[up];
        if (client === 'chat') {
          const s = clients.openai.chat.completions.stream({ model, messages: [{ role: 'user', content: 'Say hello please' }] });
          const seen = [];
          s.on('chunk', (c) => seen.push(c));
          await assert.rejects(s.finalChatCompletion(), (e) => {
            assert.ok(e.message.length > 0, 'the SDK throws the error event');
            return true;
          });
          assert.ok(seen.length > 0, 'some content came before the failure');
          assert.ok(!seen.some((c) => c.choices?.[0]?.finish_reason), 'no finish_reason before the error');
        } else if (client === 'responses') {
          const s = clients.openai.responses.stream({ model, input: 'Say hello please' });
          const types = [];
          s.on('event', (e) => types.push(e.type));
          await assert.rejects(s.finalResponse(), (e) => {
            assert.ok(e.message.length > 0, 'the SDK throws the error event');
            return true;
          });
          // (the SDK may throw on `error` before its listeners see that event)
          assert.ok(!types.includes('response.completed'), types.join(','));
        } else {
          const s = clients.anthropic.messages.stream({ model, max_tokens: 64, messages: [{ role: 'user', content: 'Say hello please' }] });
          const types = [];
          s.on('streamEvent', (e) => types.push(e.type));
          await assert.rejects(s.finalMessage(), (e) => {
            assert.equal(e.error?.type, 'error', JSON.stringify(e.error));
            assert.ok(e.error.error?.type, JSON.stringify(e.error));
            return true;
          });
          assert.ok(!types.includes('message_stop'), types.join(','));
        }
      });
    }
  }

  test('the raw stream shows the error event in the client\'s format after some content', async () => {
    const res = await mr.proxyFetch('/v1/messages', {
      headers: { 'anthropic-version': '2023-06-01' },
      body: { model: ERR.chat, max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'Say hello please' }] },
    });
    assert.equal(res.status, 200);
    const events = parseSSE(await res.text());
    const names = events.map((e) => e.event);
    assert.ok(names.includes('content_block_delta'), names.join(','));
    assert.equal(names.at(-1), 'error', names.join(','));
    assert.ok(!names.includes('message_stop'));
    const err = JSON.parse(events.at(-1).data);
    assert.equal(err.type, 'error');
    assert.ok(err.error.message.length > 0);
  });

  test('proxy-logs record every stream that failed midway as failed (converted and passed through)', async () => {
    const bodies = {
      chat: (model) => ['/v1/chat/completions', { model, stream: true, messages: [{ role: 'user', content: 'Say hello please' }] }],
      responses: (model) => ['/v1/responses', { model, stream: true, input: 'Say hello please' }],
      messages: (model) => ['/v1/messages', { model, max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'Say hello please' }] }],
    };
    for (const client of FORMATS) {
      for (const up of FORMATS) {
        const [path, body] = bodies[client](ERR[up]);
        const res = await mr.proxyFetch(path, { body, headers: client === 'messages' ? { 'anthropic-version': '2023-06-01' } : {} });
        const text = await res.text();
        assert.equal(res.status, 200, `${client} ← ${up}: ${text.slice(0, 300)}`);
        if (client === 'chat') assert.ok(!text.includes('[DONE]'), 'no [DONE] after a failure');
        const rows = await logsFor(mr, res.headers.get('x-request-id'));
        assert.equal(rows.length, 1, JSON.stringify(rows));
        assert.equal(rows[0].status, 'failed', `${client} ← ${up}: ${JSON.stringify(rows)}`);
        assert.match(rows[0].errorMessage, /error event|stream failed/, JSON.stringify(rows));
      }
    }
  });

  test('readResponse helper sanity (non-stream to a stream-error relay is a 5xx in the client\'s shape)', async () => {
    const r = await readResponse(
      await mr.proxyFetch('/v1/messages', {
        headers: { 'anthropic-version': '2023-06-01' },
        body: { model: ERR.chat, max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] },
      }),
    );
    assert.ok(r.status >= 500, r.text);
    assert.equal(r.body?.type, 'error', r.text);
  });
});
