// client-shapes.test.mjs — the requests Claude Code and Codex CLI really send (recorded from
// Claude Code 2.1.332 and Codex 0.169.0, trimmed), through metarelay to relays that speak
// another API: what those clients need to work, without installing them (the real clients
// run in tests/clients/, outside `make test`).
//
// Claude Code → a Chat-only relay: `/v1/messages?beta=true`, Claude-only fields dropped,
// the mid-conversation `system` message converted, a stream with content_block_stop, tool
// calls, count_tokens, model discovery. Against Messages-only relays its mid-conversation
// `system` message gets the relay's 400 verbatim, without failover. Codex → a Messages-only
// relay: tools in `additional_tools` / `namespace`, a `custom` tool whose call must come
// back as a custom_tool_call, the items Codex reads (output_item.done, response.completed),
// and the next turn with the whole history resent.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  PROXY_TOKEN,
  fakeReset,
  fakeStats,
  parseSSE,
  readResponse,
  routableModels,
  startFakeRelay,
  startMetarelay,
  statLastRequest,
  stopAll,
  waitFor,
} from './lib/harness.mjs';

const CLAUDE_MODEL = 'claude-opus-5-5';
const CODEX_MODEL = 'gpt-6.1-sol';
const SYSTEM_400 =
  'messages.1.role: Unexpected role "system". The Messages API accepts a top-level `system` parameter, not "system" as an input message role.';

let mr;
let chatRelay; // speaks Chat only, serves CLAUDE_MODEL
let msgRelayA; // speak Messages only, serve CODEX_MODEL and claude-sonnet-5
let msgRelayB;

async function register(fr, formats) {
  const site = await mr.admin('POST', '/api/sites', { name: fr.name, url: fr.url, platform: 'openai', formats });
  assert.equal(site.status, 200, site.text);
  const acct = await mr.admin('POST', '/api/accounts', { siteId: site.body.id, apiToken: fr.key });
  assert.equal(acct.status, 200, acct.text);
  const check = await mr.admin('POST', `/api/models/check/${acct.body.id}`);
  assert.equal(check.body?.success, true, check.text);
}

before(async () => {
  [chatRelay, msgRelayA, msgRelayB] = await Promise.all([
    startFakeRelay({ name: 'chatrelay', models: [CLAUDE_MODEL], args: ['--formats', 'chat'] }),
    startFakeRelay({ name: 'msgrelay-a', models: [CODEX_MODEL, 'claude-sonnet-5'], args: ['--formats', 'messages'] }),
    startFakeRelay({ name: 'msgrelay-b', models: [CODEX_MODEL, 'claude-sonnet-5'], args: ['--formats', 'messages'] }),
  ]);
  mr = await startMetarelay();
  await register(chatRelay, ['chat']);
  await register(msgRelayA, ['messages']);
  await register(msgRelayB, ['messages']);
  await waitFor(async () => (await routableModels(mr)).includes(CODEX_MODEL) && (await routableModels(mr)).includes(CLAUDE_MODEL), {
    what: 'models routable',
  });
});

after(async () => {
  await stopAll([mr, chatRelay, msgRelayA, msgRelayB]);
});

// ---------------------------------------------------------------------------------------
// Claude Code

const claudeHeaders = {
  'x-api-key': PROXY_TOKEN,
  authorization: undefined,
  'anthropic-version': '2023-06-01',
  'anthropic-beta': 'claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27',
  'x-app': 'cli',
  'user-agent': 'claude-cli/2.1.332 (external, sdk-cli)',
  'x-claude-code-session-id': 'c98f652b-3779-45b5-8ac0-c25b7d1d62ac',
  accept: 'application/json',
};

function claudeFetch(path, body, extra = {}) {
  const headers = { ...claudeHeaders, ...extra };
  for (const k of Object.keys(headers)) if (headers[k] === undefined) delete headers[k];
  return mr.proxyFetch(path, { body, headers, key: null });
}

/** The first request of a Claude Code process, as 2.1.332 sends it (trimmed). */
function claudeCodeBody(userText, model = CLAUDE_MODEL) {
  return {
    model,
    max_tokens: 128000,
    stream: true,
    system: [
      { type: 'text', text: 'x-anthropic-billing-header: cc_version=2.1.332; cc_entrypoint=sdk-cli;' },
      { type: 'text', text: 'You are a Claude agent, built on the Claude Agent SDK.', cache_control: { type: 'ephemeral' } },
    ],
    messages: [
      { role: 'user', content: [{ type: 'text', text: '<system-reminder>\nAs you answer, use this context.\n</system-reminder>' }] },
      { role: 'system', content: [{ type: 'text', text: '# Environment\nPrimary working directory: /tmp/project' }] },
      { role: 'user', content: [{ type: 'text', text: userText, cache_control: { type: 'ephemeral' } }] },
    ],
    tools: [
      {
        name: 'Bash',
        description: 'Executes a bash command.',
        input_schema: {
          $schema: 'https://json-schema.org/draft/2020-12/schema',
          type: 'object',
          properties: { command: { type: 'string' }, timeout: { type: 'number' } },
          required: ['command'],
          additionalProperties: false,
        },
      },
      {
        name: 'WebFetch',
        description: 'Fetches a URL.',
        defer_loading: true,
        input_schema: { type: 'object', properties: { url: { type: 'string' } }, required: ['url'] },
      },
    ],
    metadata: { user_id: JSON.stringify({ device_id: 'd'.repeat(64), account_uuid: '', session_id: 'c98f652b-3779-45b5-8ac0-c25b7d1d62ac' }) },
    thinking: { type: 'adaptive', display: 'omitted' },
    context_management: { edits: [{ type: 'clear_thinking_20251015', keep: 'all' }] },
    output_config: { effort: 'medium' },
  };
}

/** The text of a Claude stream (its text_delta events joined). */
function streamedText(events) {
  return events
    .filter((e) => e.event === 'content_block_delta')
    .map((e) => JSON.parse(e.data).delta)
    .filter((d) => d.type === 'text_delta')
    .map((d) => d.text)
    .join('');
}

function keysDeep(v, out = new Set()) {
  if (Array.isArray(v)) v.forEach((x) => keysDeep(x, out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) (out.add(k), keysDeep(x, out));
  return out;
}

describe('Claude Code → Chat-only relay', () => {
  test('a streamed text turn: Claude events with content_block_stop, Claude-only fields not sent upstream', async () => {
    await fakeReset(chatRelay);
    const res = await claudeFetch('/v1/messages?beta=true', claudeCodeBody('Say hello to metarelay'));
    const text = await res.text();
    assert.equal(res.status, 200, text);
    assert.match(res.headers.get('content-type'), /text\/event-stream/);
    const events = parseSSE(text);
    const names = events.map((e) => e.event);
    for (const want of ['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop'])
      assert.ok(names.includes(want), `${want} in ${names.join(',')}`);
    assert.equal(streamedText(events), 'Hello from chatrelay: Say hello to metarelay');

    const { body: up } = statLastRequest(await fakeStats(chatRelay));
    const keys = keysDeep(up);
    for (const k of ['thinking', 'context_management', 'output_config', 'cache_control', 'defer_loading', '$schema', 'metadata'])
      assert.ok(!keys.has(k), `${k} must not reach a Chat upstream: ${JSON.stringify(up).slice(0, 400)}`);
    // the mid-conversation system message was hoisted into the Chat system message
    assert.deepEqual(
      up.messages.map((m) => m.role),
      ['system', 'user', 'user'],
    );
    assert.match(JSON.stringify(up.messages[0].content), /You are a Claude agent[\s\S]*Primary working directory/);
  });

  test('a tool call streams as tool_use with input_json_delta and ends with stop_reason tool_use', async () => {
    const res = await claudeFetch('/v1/messages?beta=true', claudeCodeBody('please use tool Bash'));
    const text = await res.text();
    assert.equal(res.status, 200, text);
    const events = parseSSE(text).filter((e) => e.data).map((e) => ({ event: e.event, ...JSON.parse(e.data) }));
    const start = events.find((e) => e.event === 'content_block_start' && e.content_block.type === 'tool_use');
    assert.ok(start, text);
    assert.equal(start.content_block.name, 'Bash');
    const args = events
      .filter((e) => e.event === 'content_block_delta' && e.index === start.index)
      .map((e) => e.delta.partial_json)
      .join('');
    assert.deepEqual(JSON.parse(args), { command: 'Paris' });
    assert.ok(events.some((e) => e.event === 'content_block_stop' && e.index === start.index));
    assert.equal(events.find((e) => e.event === 'message_delta').delta.stop_reason, 'tool_use');
  });

  test('count_tokens?beta=true answers {"input_tokens": N}', async () => {
    const body = claudeCodeBody('count me');
    delete body.stream;
    delete body.max_tokens;
    const r = await readResponse(await claudeFetch('/v1/messages/count_tokens?beta=true', body));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.body), ['input_tokens']);
    assert.ok(Number.isInteger(r.body.input_tokens) && r.body.input_tokens > 0);
    // no Messages channel serves the model: a local estimate, said so, logged as such
    assert.equal(r.headers.get('x-metarelay-estimate'), 'true');
    const rid = r.headers.get('x-request-id');
    const line = await waitFor(() => mr.stdout.split('\n').find((l) => l.includes(rid)), { what: 'access log line' });
    assert.match(line, /"upstream_format":"local"/);
  });

  test('GET /v1/models?limit=1000 lists ids and display names (model discovery)', async () => {
    const r = await readResponse(await mr.proxyFetch('/v1/models?limit=1000', { method: 'GET', headers: { 'anthropic-version': '2023-06-01' } }));
    assert.equal(r.status, 200, r.text);
    const m = r.body.data.find((x) => x.id === CLAUDE_MODEL);
    assert.ok(m, r.text);
    assert.equal(typeof m.display_name, 'string');
  });
});

describe('Claude Code → Messages-only relays', () => {
  test('the mid-conversation system message gets the relay 400 verbatim, without failover', async () => {
    await Promise.all([fakeReset(msgRelayA), fakeReset(msgRelayB)]);
    const r = await readResponse(await claudeFetch('/v1/messages?beta=true', claudeCodeBody('hi', 'claude-sonnet-5')));
    assert.equal(r.status, 400, r.text);
    assert.equal(r.body.type, 'error');
    assert.equal(r.body.error.type, 'invalid_request_error');
    assert.equal(r.body.error.message, SYSTEM_400);
    const [a, b] = await Promise.all([fakeStats(msgRelayA), fakeStats(msgRelayB)]);
    assert.equal(a.requests_total + b.requests_total, 1, 'one relay tried, no failover');

    // Claude Code then folds the block into the user turn and retries: that works.
    const retry = claudeCodeBody('hi', 'claude-sonnet-5');
    const [first, sys, last] = retry.messages;
    retry.messages = [{ role: 'user', content: [...first.content, ...sys.content, ...last.content] }];
    const ok = await claudeFetch('/v1/messages?beta=true', retry);
    const text = await ok.text();
    assert.equal(ok.status, 200, text);
    assert.match(streamedText(parseSSE(text)), /^Hello from msgrelay-[ab]: /);
  });
});

// ---------------------------------------------------------------------------------------
// Codex

const codexHeaders = {
  'session-id': '01a216b3-5c9e-7f42-ab3d-2eae77ceaa7c',
  'thread-id': '01a216b3-5c9e-7f42-ab3d-2eae77ceaa7c',
  'x-client-request-id': '01a216b3-5c9e-7f42-ab3d-2eae77ceaa7c',
  'x-codex-turn-metadata': '{"session_id":"01a216b3","turn_id":"t1","sandbox":"seccomp"}',
  originator: 'codex_exec',
  'user-agent': 'codex_exec/0.169.0 (Debian 12.0.0; x86_64)',
  accept: 'text/event-stream',
};

/** Codex 0.169's first request with its default model (trimmed), plus `history`. */
function codexBody(userText, history = []) {
  return {
    model: CODEX_MODEL,
    stream: true,
    store: false,
    include: ['reasoning.encrypted_content'],
    tool_choice: 'auto',
    parallel_tool_calls: false,
    reasoning: { effort: 'medium', context: 'all_turns' },
    prompt_cache_key: '01a216b3-5c9e-7f42-ab3d-2eae77ceaa7c',
    text: { verbosity: 'low' },
    client_metadata: { 'x-codex-installation-id': 'eef4984f' },
    input: [
      {
        type: 'additional_tools',
        id: 'at_1',
        role: 'developer',
        tools: [
          {
            type: 'namespace',
            name: 'functions',
            description: '',
            tools: [
              { type: 'custom', name: 'exec', description: 'Run JavaScript code', format: { type: 'grammar', syntax: 'lark', definition: 'start: /[\\s\\S]+/' } },
              {
                type: 'function',
                name: 'wait',
                description: 'Waits on a yielded exec cell.',
                strict: false,
                parameters: { type: 'object', properties: { cell_id: { type: 'string' } }, required: ['cell_id'], additionalProperties: false },
              },
            ],
          },
          { type: 'tool_search', execution: 'client', description: 'Search tools', parameters: { type: 'object', properties: {} } },
          { type: 'web_search', external_web_access: false },
        ],
      },
      { type: 'message', id: 'msg_d1', role: 'developer', content: [{ type: 'input_text', text: 'You are Codex.' }] },
      { type: 'message', id: 'msg_u1', role: 'user', content: [{ type: 'input_text', text: '<environment_context>\n  <cwd>/tmp/project</cwd>\n</environment_context>' }] },
      { type: 'message', id: 'msg_u2', role: 'user', content: [{ type: 'input_text', text: userText }] },
      ...history,
    ],
  };
}

async function codexTurn(body) {
  const res = await mr.proxyFetch('/v1/responses', { body, headers: codexHeaders });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  assert.match(res.headers.get('content-type'), /text\/event-stream/);
  return parseSSE(text).map((e) => ({ event: e.event, ...JSON.parse(e.data) }));
}

describe('Codex → Messages-only relay', () => {
  test('a custom tool call inside a namespace comes back as a custom_tool_call; the next turn works', async () => {
    const events = await codexTurn(codexBody('please use tool exec'));
    const done = events.filter((e) => e.event === 'response.output_item.done').map((e) => e.item);
    assert.deepEqual(
      done.map((i) => i.type),
      ['reasoning', 'message', 'custom_tool_call'],
    );
    const call = done[2];
    assert.equal(call.name, 'exec');
    assert.equal(call.input, 'Paris');
    assert.equal(call.namespace, 'functions');
    assert.ok(!('arguments' in call));
    assert.ok(done[0].encrypted_content, 'encrypted reasoning was included');
    const completed = events.find((e) => e.event === 'response.completed');
    assert.ok(completed, events.map((e) => e.event).join(','));
    assert.deepEqual(completed.response.output.map((i) => i.type), ['reasoning', 'message', 'custom_tool_call']);

    // The next turn resends everything: reasoning (with its encrypted content), the
    // message, the call and its output. The relay checks the thinking signature.
    const history = [
      ...done.map((i) => ({ ...i })),
      { type: 'custom_tool_call_output', id: 'ctco_1', call_id: call.call_id, output: [{ type: 'input_text', text: 'ReferenceError: Paris is not defined' }] },
    ];
    const next = await codexTurn(codexBody('please use tool exec', history));
    const msg = next.filter((e) => e.event === 'response.output_item.done').map((e) => e.item).find((i) => i.type === 'message');
    assert.match(msg.content[0].text, /^Hello from msgrelay-[ab]: ReferenceError: Paris is not defined$/);
    assert.ok(next.some((e) => e.event === 'response.completed'));
  });

  test('a namespaced function call comes back as a function_call with its namespace', async () => {
    const events = await codexTurn(codexBody('please use tool wait'));
    const call = events.filter((e) => e.event === 'response.output_item.done').map((e) => e.item).find((i) => i.type === 'function_call');
    assert.ok(call, JSON.stringify(events.map((e) => e.event)));
    assert.equal(call.name, 'wait');
    assert.equal(call.namespace, 'functions');
    assert.deepEqual(JSON.parse(call.arguments), { cell_id: 'Paris' });
  });
});
