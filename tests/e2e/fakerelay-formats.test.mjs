// fakerelay-formats.test.mjs — fakerelay's Claude Messages and OpenAI Responses surfaces
// checked with the official SDKs talking to fakerelay directly: `@anthropic-ai/sdk`
// (messages.create, messages.stream + finalMessage()) and `openai` (responses.create,
// responses.stream + finalResponse()). The SDKs' own stream helpers must assemble the
// final message without error: that is what proves the emulation faithful enough for
// metarelay's format-conversion tests to rely on it. Also: --formats (a surface the
// relay does not speak answers 404 in its own shape), tool round trips, thinking and
// reasoning replay, the validation 400s and the faults in each surface's shape.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';

import { fakeStats, parseSSE, startFakeRelay, statLastRequest, stopAll } from './lib/harness.mjs';

const WEATHER = {
  name: 'get_weather',
  description: 'Weather of a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};
const TIME = {
  name: 'get_time',
  description: 'Time in a zone',
  input_schema: { type: 'object', properties: { zone: { type: 'string', enum: ['UTC', 'CET'] } }, required: ['zone'] },
};
const FN_WEATHER = { type: 'function', name: 'get_weather', parameters: WEATHER.input_schema, strict: false };
const FN_TIME = { type: 'function', name: 'get_time', parameters: TIME.input_schema, strict: false };

describe('fakerelay formats (official SDKs, direct)', () => {
  let all; // speaks chat, messages, responses
  let chatOnly;
  let claudeOnly;
  let anthropic;
  let openai;

  before(async () => {
    all = await startFakeRelay({ name: 'fmt', models: ['*'], args: ['--formats', 'chat,messages,responses', '--chunks', '5'] });
    chatOnly = await startFakeRelay({ name: 'chatonly', models: ['*'] });
    claudeOnly = await startFakeRelay({ name: 'claudeonly', models: ['*'], args: ['--formats', 'messages'] });
    anthropic = new Anthropic({ apiKey: all.key, baseURL: all.url, maxRetries: 0, timeout: 20000 });
    openai = all.openai();
  });
  after(async () => {
    await stopAll([all, chatOnly, claudeOnly]);
  });

  // ---------------------------------------------------------------- Claude Messages

  test('messages.create: deterministic text, end_turn, usage with cache fields', async () => {
    const m = await anthropic.messages.create({
      model: 'claude-sonnet-4-5',
      max_tokens: 256,
      system: [{ type: 'text', text: 'Be terse.', cache_control: { type: 'ephemeral' } }],
      messages: [{ role: 'user', content: 'Say hi' }],
    });
    assert.equal(m.type, 'message');
    assert.equal(m.role, 'assistant');
    assert.match(m.id, /^msg_/);
    assert.deepEqual(m.content, [{ type: 'text', text: 'Hello from fmt: Say hi', citations: null }]);
    assert.equal(m.stop_reason, 'end_turn');
    assert.equal(m.stop_sequence, null);
    assert.ok(m.usage.input_tokens >= 1);
    assert.ok(m.usage.cache_read_input_tokens >= 1, 'the cache_control prefix is counted as read');
    assert.equal(m.usage.cache_creation_input_tokens, 0);
    assert.equal(m.usage.output_tokens, Math.ceil('Hello from fmt: Say hi'.length / 4));
  });

  test('messages.stream: finalMessage() assembles thinking, text and a tool_use from the events', async () => {
    const stream = anthropic.messages.stream({
      model: 'claude-sonnet-4-5',
      max_tokens: 4096,
      thinking: { type: 'enabled', budget_tokens: 1024 },
      tools: [WEATHER],
      messages: [{ role: 'user', content: 'Please use tool now' }],
    });
    const types = [];
    stream.on('streamEvent', (e) => types.push(e.type));
    const m = await stream.finalMessage();
    assert.deepEqual(
      m.content.map((b) => b.type),
      ['thinking', 'text', 'tool_use'],
    );
    assert.equal(m.content[0].thinking, 'fmt is thinking about: Please use tool now');
    assert.ok(m.content[0].signature.length > 10, 'signature_delta applied');
    assert.equal(m.content[1].text, 'Hello from fmt: Please use tool now');
    assert.equal(m.content[2].name, 'get_weather');
    assert.deepEqual(m.content[2].input, { city: 'Paris' }, 'input_json_delta fragments joined and parsed');
    assert.equal(m.stop_reason, 'tool_use');
    assert.ok(m.usage.output_tokens > 1, 'message_delta usage applied');
    assert.equal(types[0], 'message_start');
    assert.equal(types.at(-1), 'message_stop');
    assert.equal(types.at(-2), 'message_delta');
    assert.ok(types.filter((t) => t === 'content_block_stop').length === 3);

    // Non-stream answer carries the same content.
    const whole = await anthropic.messages.create({
      model: 'claude-sonnet-4-5',
      max_tokens: 4096,
      thinking: { type: 'enabled', budget_tokens: 1024 },
      tools: [WEATHER],
      messages: [{ role: 'user', content: 'Please use tool now' }],
    });
    assert.deepEqual(
      whole.content.map((b) => ({ ...b, id: undefined })),
      m.content.map((b) => ({ ...b, id: undefined })),
    );
  });

  test('messages: tool round trip with the thinking block replayed, then a tampered signature is refused', async () => {
    const params = {
      model: 'claude-sonnet-4-5',
      max_tokens: 4096,
      thinking: { type: 'enabled', budget_tokens: 1024 },
      tools: [WEATHER],
      messages: [{ role: 'user', content: 'What is the weather? use tool' }],
    };
    const first = await anthropic.messages.stream(params).finalMessage();
    const call = first.content.find((b) => b.type === 'tool_use');
    assert.ok(call);
    const history = [
      ...params.messages,
      { role: 'assistant', content: first.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: 'sunny, 21 C' }] },
    ];
    const second = await anthropic.messages.create({ ...params, messages: history });
    assert.equal(second.stop_reason, 'end_turn', 'no new tool call after the results');
    assert.equal(second.content.find((b) => b.type === 'text').text, 'Hello from fmt: sunny, 21 C');

    const tampered = structuredClone(history);
    tampered[1].content[0].thinking += ' (edited)';
    await assert.rejects(anthropic.messages.create({ ...params, messages: tampered }), (e) => {
      assert.equal(e.status, 400);
      assert.equal(e.error.error.type, 'invalid_request_error');
      assert.match(e.error.error.message, /^messages\.1\.content\.0: Invalid `signature` in `thinking` block$/);
      return true;
    });
  });

  test('messages: parallel tool calls on x-fake-tool: a,b, and a missing tool_result is a 400', async () => {
    const params = { model: 'claude-haiku-4-5', max_tokens: 512, tools: [WEATHER, TIME], messages: [{ role: 'user', content: 'Both please' }] };
    const m = await anthropic.messages.stream(params, { headers: { 'x-fake-tool': 'get_weather,get_time' } }).finalMessage();
    const calls = m.content.filter((b) => b.type === 'tool_use');
    assert.deepEqual(
      calls.map((c) => [c.name, c.input]),
      [
        ['get_weather', { city: 'Paris' }],
        ['get_time', { zone: 'UTC' }],
      ],
    );
    assert.notEqual(calls[0].id, calls[1].id);
    const history = [...params.messages, { role: 'assistant', content: m.content }];
    const ok = await anthropic.messages.create({
      ...params,
      messages: [
        ...history,
        {
          role: 'user',
          content: calls.map((c) => ({ type: 'tool_result', tool_use_id: c.id, content: `${c.name} ok` })),
        },
      ],
    });
    assert.equal(ok.stop_reason, 'end_turn');
    await assert.rejects(
      anthropic.messages.create({
        ...params,
        messages: [...history, { role: 'user', content: [{ type: 'tool_result', tool_use_id: calls[0].id, content: 'x' }] }],
      }),
      (e) =>
        e.status === 400 &&
        e.error.error.message ===
          `messages.1: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${calls[1].id}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`,
    );
  });

  test('messages: a role "system" message gets the exact 400 Claude Code recognises', async () => {
    await assert.rejects(
      anthropic.messages.create({
        model: 'claude-sonnet-4-5',
        max_tokens: 64,
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'hello' },
          { role: 'system', content: 'be brief' },
        ],
      }),
      (e) => {
        assert.equal(e.status, 400);
        assert.equal(e.constructor.name, 'BadRequestError');
        assert.equal(
          e.error.error.message,
          'messages.2.role: Unexpected role "system". The Messages API accepts a top-level `system` parameter, not "system" as an input message role.',
        );
        return true;
      },
    );
  });

  test('messages: stream-error fault makes the SDK stream throw the overloaded_error; 529 and 429 are Claude-shaped', async () => {
    const params = { model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] };
    await assert.rejects(anthropic.messages.stream(params, { headers: { 'x-fake-fault': 'stream-error' } }).finalMessage(), (e) => {
      assert.equal(e.error?.error?.type, 'overloaded_error');
      return true;
    });
    await assert.rejects(anthropic.messages.create(params, { headers: { 'x-fake-fault': '529' } }), (e) => {
      assert.equal(e.status, 529);
      assert.equal(e.error.type, 'error');
      assert.equal(e.error.error.type, 'overloaded_error');
      return true;
    });
    await assert.rejects(anthropic.messages.create({ ...params, model: 'fault-429' }), (e) => {
      assert.equal(e.status, 429);
      assert.equal(e.error.error.type, 'rate_limit_error');
      return true;
    });
    await assert.rejects(new Anthropic({ apiKey: 'wrong', baseURL: all.url, maxRetries: 0 }).messages.create(params), (e) => {
      assert.equal(e.status, 401);
      assert.equal(e.error.error.type, 'authentication_error');
      return true;
    });
  });

  test('messages: count_tokens answers {input_tokens}', async () => {
    const r = await anthropic.messages.countTokens({ model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'count these words please' }] });
    assert.equal(r.input_tokens, Math.ceil('count these words please'.length / 4));
  });

  // ---------------------------------------------------------------- OpenAI Responses

  test('responses.create: message with output_text, usage details', async () => {
    const r = await openai.responses.create({ model: 'gpt-5', input: 'Say hi', instructions: 'Be terse.' });
    assert.equal(r.object, 'response');
    assert.equal(r.status, 'completed');
    assert.equal(r.output_text, 'Hello from fmt: Say hi');
    assert.equal(r.output.length, 1);
    assert.deepEqual(r.output[0].content, [{ type: 'output_text', text: 'Hello from fmt: Say hi', annotations: [], logprobs: [] }]);
    assert.equal(r.instructions, 'Be terse.');
    assert.deepEqual(Object.keys(r.usage).sort(), ['input_tokens', 'input_tokens_details', 'output_tokens', 'output_tokens_details', 'total_tokens']);
    assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
    assert.equal(r.usage.output_tokens_details.reasoning_tokens, 0);
  });

  test('responses.stream: finalResponse() assembles reasoning, message and function calls', async () => {
    const params = {
      model: 'gpt-5',
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'weather and time, use tools' }] }],
      tools: [FN_WEATHER, FN_TIME],
      reasoning: { effort: 'low', summary: 'auto' },
      include: ['reasoning.encrypted_content'],
      store: false,
    };
    const stream = openai.responses.stream(params);
    const events = [];
    stream.on('event', (e) => events.push(e));
    const r = await stream.finalResponse();
    assert.deepEqual(
      r.output.map((o) => o.type),
      ['reasoning', 'message', 'function_call', 'function_call'],
    );
    assert.equal(r.output[0].summary[0].text, 'fmt is thinking about: weather and time, use tools');
    assert.ok(r.output[0].encrypted_content);
    assert.equal(r.output_text, 'Hello from fmt: weather and time, use tools');
    assert.deepEqual(JSON.parse(r.output[2].arguments), { city: 'Paris' });
    assert.deepEqual(JSON.parse(r.output[3].arguments), { zone: 'UTC' });
    assert.ok(r.usage.output_tokens_details.reasoning_tokens > 0);
    // sequence numbers 0,1,2,… and the documented event order
    assert.deepEqual(
      events.map((e) => e.sequence_number),
      events.map((_, i) => i),
    );
    assert.equal(events[0].type, 'response.created');
    assert.equal(events[1].type, 'response.in_progress');
    assert.equal(events.at(-1).type, 'response.completed');
    const names = events.map((e) => e.type);
    for (const t of [
      'response.reasoning_summary_part.added',
      'response.reasoning_summary_text.delta',
      'response.reasoning_summary_text.done',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.done',
      'response.output_item.done',
    ])
      assert.ok(names.includes(t), `missing ${t}`);
    assert.ok(names.filter((t) => t === 'response.function_call_arguments.delta').length >= 6, 'arguments in several fragments');

    // Round trip: replay reasoning + calls, answer both calls.
    const calls = r.output.filter((o) => o.type === 'function_call');
    const next = await openai.responses.create({
      ...params,
      input: [
        ...params.input,
        ...r.output.map(({ status, ...o }) => (o.type === 'message' ? { ...o, status } : o)),
        ...calls.map((c) => ({ type: 'function_call_output', call_id: c.call_id, output: `${c.name}: fine` })),
      ],
    });
    assert.equal(next.status, 'completed');
    assert.equal(next.output.filter((o) => o.type === 'function_call').length, 0, 'no new calls after the outputs');
    assert.equal(next.output_text, 'Hello from fmt: get_weather: fineget_time: fine');
  });

  test('responses: 400s in the OpenAI shape for malformed input', async () => {
    const expect400 = (p, re) =>
      assert.rejects(p, (e) => {
        assert.equal(e.status, 400);
        assert.equal(e.error.type, 'invalid_request_error');
        assert.match(e.message, re);
        return true;
      });
    await expect400(
      openai.responses.create({ model: 'gpt-5', input: [{ type: 'function_call_output', call_id: 'call_ghost', output: 'x' }] }),
      /No tool call found for function call output with call_id call_ghost\./,
    );
    await expect400(
      openai.responses.create({
        model: 'gpt-5',
        input: [{ type: 'function_call', id: 'toolu_1', call_id: 'c1', name: 'f', arguments: '{}' }],
      }),
      /Expected an ID that begins with 'fc'/,
    );
    await expect400(
      openai.responses.create({ model: 'gpt-5', input: [{ type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: 'gw1:anthropic:Sig' }] }),
      /could not be verified/,
    );
    await expect400(openai.responses.create({ model: 'gpt-5', input: 'x', max_tokens: 10 }), /Unknown parameter: 'max_tokens'/);
    await expect400(
      openai.responses.create({ model: 'gpt-5', input: 'x', tools: [{ type: 'function', function: { name: 'f', parameters: {} } }] }),
      /Missing required parameter: 'tools\[0\]\.name'/,
    );
    await expect400(openai.responses.create({ model: 'gpt-5', input: 'x', max_output_tokens: 5 }), /integer below minimum value/);
  });

  test('responses: stream-error fault throws in the SDK stream; 500 fault is OpenAI-shaped', async () => {
    const stream = openai.responses.stream({ model: 'gpt-5', input: 'hi' }, { headers: { 'x-fake-fault': 'stream-error' } });
    const types = [];
    stream.on('event', (e) => types.push(e.type));
    await assert.rejects(stream.finalResponse());
    assert.ok(!types.includes('response.completed'));
    await assert.rejects(openai.responses.create({ model: 'fault-500', input: 'hi' }), (e) => e.status === 500 && e.error.type === 'server_error');
  });

  // ---------------------------------------------------------------- --formats

  test('--formats: a surface the relay does not speak answers 404 in its own shape', async () => {
    const a = new Anthropic({ apiKey: chatOnly.key, baseURL: chatOnly.url, maxRetries: 0 });
    await assert.rejects(a.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }), (e) => {
      assert.equal(e.status, 404);
      assert.equal(e.error.type, 'error');
      assert.equal(e.error.error.type, 'not_found_error');
      return true;
    });
    await assert.rejects(chatOnly.openai().responses.create({ model: 'gpt-5', input: 'x' }), (e) => e.status === 404 && /Invalid URL/.test(e.message));
    // a messages-only relay has no chat surface, but still lists its models
    const c = claudeOnly.openai();
    await assert.rejects(c.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }), (e) => e.status === 404);
    const models = await new Anthropic({ apiKey: claudeOnly.key, baseURL: claudeOnly.url, maxRetries: 0 }).models.list();
    assert.ok(models.data.some((m) => m.id === claudeOnly.probeModel && m.type === 'model'));
    const ok = await new Anthropic({ apiKey: claudeOnly.key, baseURL: claudeOnly.url, maxRetries: 0 }).messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 32,
      messages: [{ role: 'user', content: 'ping' }],
    });
    assert.equal(ok.content[0].text, 'Hello from claudeonly: ping');
  });

  test('stats record the last request body of the new surfaces', async () => {
    await anthropic.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 99, messages: [{ role: 'user', content: 'record me' }] });
    const last = statLastRequest(await fakeStats(all));
    assert.equal(last.raw.target, '/v1/messages');
    assert.equal(last.body.max_tokens, 99);
    assert.ok(last.headers['anthropic-version']);
    const st = await fakeStats(all);
    assert.ok(st.requests_by_path['/v1/messages'] >= 1);
    assert.ok(st.requests_by_path['/v1/responses'] >= 1);
  });

  test('raw SSE: Claude named events and Responses events carry event: lines', async () => {
    const res = await fetch(`${all.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': all.key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json', 'x-fake-chunks': '2' },
      body: JSON.stringify({ model: 'claude-x', max_tokens: 50, stream: true, messages: [{ role: 'user', content: 'yo' }] }),
    });
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const ev = parseSSE(await res.text());
    assert.deepEqual(
      ev.map((e) => e.event),
      ['message_start', 'content_block_start', 'ping', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop'],
    );
    for (const e of ev) assert.equal(JSON.parse(e.data).type, e.event);
  });
});
