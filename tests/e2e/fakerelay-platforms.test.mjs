// fakerelay --platform: each relay platform's management API driven through raw HTTP the
// way the reference describes it (login → self → check-in twice → tokens list / create /
// full key → models → pricing; wrong password, expired session, Turnstile, 2FA, the
// AnyRouter challenge solved here by a small implementation of its algorithm), and the
// /v1 relay accepting the keys the management API created.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import { startFakeRelay, stopAll } from './lib/harness.mjs';

const TOTP_SECRET = 'JBSWY3DPEHPK3PXP';
const TURNSTILE_OK = 'XXXX.DUMMY.TOKEN.XXXX';

// ---- helpers ----

/** A tiny HTTP client with a cookie jar and default headers. */
function client(base, headers = {}) {
  const jar = new Map();
  const c = {
    jar,
    headers: { ...headers },
    async req(method, path, { body, headers: h = {}, raw = false } = {}) {
      const hdrs = { ...c.headers, ...h };
      if (jar.size) hdrs.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
      if (body !== undefined) hdrs['content-type'] = 'application/json';
      const res = await fetch(base + path, {
        method,
        headers: hdrs,
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
        redirect: 'manual',
      });
      for (const sc of res.headers.getSetCookie()) {
        const [kv] = sc.split(';');
        const i = kv.indexOf('=');
        const k = kv.slice(0, i).trim();
        const v = kv.slice(i + 1).trim();
        if (v === '' || /max-age=0\b/i.test(sc)) jar.delete(k);
        else jar.set(k, v);
      }
      const text = await res.text();
      let json = null;
      try {
        json = JSON.parse(text);
      } catch {
        /* HTML or plain text */
      }
      return { status: res.status, headers: res.headers, text, json, raw };
    },
    get: (p, o) => c.req('GET', p, o),
    post: (p, body, o = {}) => c.req('POST', p, { ...o, body }),
    del: (p, o) => c.req('DELETE', p, o),
  };
  return c;
}

/** RFC 6238 TOTP (SHA-1, 6 digits, 30 s) of a base32 secret. */
function totp(secret, t = Date.now() / 1000) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of secret.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(ch).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(Math.floor(t / 30)));
  const mac = crypto.createHmac('sha1', key).update(msg).digest();
  const off = mac[19] & 0xf;
  return String((mac.readUInt32BE(off) & 0x7fffffff) % 1000000).padStart(6, '0');
}

/** The acw_sc__v2 cookie for a challenge page: arg1 permuted by the table, XOR the key. */
function solveAcw(html) {
  const arg1 = /var arg1='([0-9A-Fa-f]{40})'/.exec(html)[1];
  const tableMatch = /m=\[([0-9a-fx,]+)\]/.exec(html);
  const m = tableMatch
    ? tableMatch[1].split(',').map((x) => Number(x))
    : [15, 35, 29, 24, 33, 16, 1, 38, 10, 9, 19, 31, 40, 27, 22, 23, 25, 13, 6, 11, 39, 18, 20, 8, 14, 21, 32, 26, 2, 30, 7, 4, 17, 5, 3, 28, 34, 37, 12, 36];
  const keyMatch = /'([0-9a-f]{40})'/.exec(html.replace(`'${arg1}'`, ''));
  const key = keyMatch ? keyMatch[1] : '3000176000856006061501533003690027800375';
  const q = m.map((p) => arg1[p - 1]).join('');
  let out = '';
  for (let i = 0; i < 40; i += 2) out += (parseInt(q.slice(i, i + 2), 16) ^ parseInt(key.slice(i, i + 2), 16)).toString(16).padStart(2, '0');
  return out;
}

async function fakeStats(fr) {
  return (await fetch(`${fr.url}/_fake/stats`)).json();
}

async function fakePlatform(fr, body) {
  const res = await fetch(`${fr.url}/_fake/platform`, body ? { method: 'POST', body: JSON.stringify(body) } : {});
  return res.json();
}

async function chat(fr, key, model = 'gpt-4o-mini', headers = {}) {
  const res = await fetch(`${fr.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
  });
  return { status: res.status, json: await res.json() };
}

const relays = [];
async function start(platform, args = [], models = ['gpt-4o-mini', 'gpt-4o', 'dall-e-3']) {
  const fr = await startFakeRelay({ models, args: ['--platform', platform, ...args] });
  relays.push(fr);
  return fr;
}

after(async () => stopAll(relays));

test('the acw_sc__v2 solver matches the reference example', () => {
  const html = "<script>var arg1='B8B78DDA1D5CD2598AAEE9DD6975913AA490BAE3';</script>";
  assert.equal(solveAcw(html), '699dbedad126579b6bc0ebb91eaae8d7af3548b5');
});

// ---- New API ----

describe('new-api', () => {
  let fr, c;
  before(async () => {
    fr = await start('new-api', ['--tokens', '2', '--masked-keys']);
    c = client(fr.url);
  });

  test('status carries quota_per_unit and the New API detection fields', async () => {
    const r = await c.get('/api/status');
    assert.equal(r.json.success, true);
    assert.equal(r.json.data.quota_per_unit, 500000);
    assert.equal(r.json.data.quota_display_type, 'USD');
    assert.equal(r.json.data.checkin_enabled, true);
    assert.equal(r.json.data.setup, true);
    assert.ok(r.headers.get('x-oneapi-request-id'));
  });

  test('wrong password, then login with the session cookie and New-Api-User', async () => {
    let r = await c.post('/api/user/login', { username: 'alice', password: 'nope' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { success: false, message: '用户名或密码错误，或用户已被封禁' });
    r = await c.post('/api/user/login', { username: 'alice', password: 'secret123' });
    assert.equal(r.json.success, true);
    assert.equal(r.json.data.id, 1);
    assert.ok(c.jar.get('session'));
    r = await c.get('/api/user/self');
    assert.equal(r.status, 401);
    assert.match(r.json.message, /New-Api-User/);
    r = await c.get('/api/user/self', { headers: { 'New-Api-User': '2' } });
    assert.equal(r.status, 401);
    assert.match(r.json.message, /不匹配/);
    c.headers['New-Api-User'] = '1';
    r = await c.get('/api/user/self');
    assert.equal(r.json.data.quota, 5000000);
    assert.equal(r.json.data.used_quota, 250000);
  });

  test('check-in twice: quota_awarded, then 今日已签到; tomorrow works again', async () => {
    let r = await c.post('/api/user/checkin');
    assert.equal(r.json.success, true);
    assert.equal(r.json.data.quota_awarded, 300000);
    r = await c.post('/api/user/checkin');
    assert.deepEqual(r.json, { success: false, message: '今日已签到' });
    r = await c.get('/api/user/checkin');
    assert.equal(r.json.data.stats.checked_in_today, true);
    r = await c.get('/api/user/self');
    assert.equal(r.json.data.quota, 5300000);
    await fetch(`${fr.url}/_fake/next-day`, { method: 'POST' });
    r = await c.post('/api/user/checkin');
    assert.equal(r.json.success, true);
    const st = await fakeStats(fr);
    assert.equal(st.checkins.alice, 2);
    assert.equal(st.management_calls['POST /api/user/checkin'], 3);
  });

  test('tokens: masked list, create, full key, relay with it, delete', async () => {
    let r = await c.get('/api/token/?p=0&size=100');
    assert.equal(r.json.data.total, 2);
    assert.equal(r.json.data.page, 1);
    assert.match(r.json.data.items[0].key, /^[A-Za-z0-9]{4}\*{10}[A-Za-z0-9]{4}$/);
    r = await c.post('/api/token/', { name: 'gw', remain_quota: 0, expired_time: -1, unlimited_quota: true, model_limits_enabled: false, model_limits: '', allow_ips: '', group: '' });
    assert.deepEqual(r.json, { success: true, message: '' });
    r = await c.get('/api/token/?p=1&size=10');
    const gw = r.json.data.items[0];
    assert.equal(gw.name, 'gw');
    assert.equal(gw.expired_time, -1);
    assert.equal(gw.DeletedAt, null);
    r = await c.post(`/api/token/${gw.id}/key`);
    const key = r.json.data.key;
    assert.match(key, /^[A-Za-z0-9]{48}$/);
    assert.equal(key.slice(0, 4) + '**********' + key.slice(-4), gw.key);
    let ch = await chat(fr, `sk-${key}`);
    assert.equal(ch.status, 200);
    assert.match(ch.json.choices[0].message.content, /^Hello from/);
    ch = await chat(fr, 'sk-unknown');
    assert.equal(ch.status, 401);
    assert.equal(ch.json.error.type, 'new_api_error');
    assert.match(ch.json.error.message, /^无效的令牌 \(request id: \d+\)$/);
    ch = await chat(fr, `sk-${key}`, 'no-such-model');
    assert.equal(ch.status, 503);
    assert.equal(ch.json.error.code, 'model_not_found');
    const models = await (await fetch(`${fr.url}/v1/models`, { headers: { authorization: `Bearer sk-${key}` } })).json();
    assert.equal(models.object, 'list');
    assert.ok(models.data.some((m) => m.id === 'gpt-4o-mini'));
    r = await c.del(`/api/token/${gw.id}`);
    assert.equal(r.json.success, true);
    ch = await chat(fr, `sk-${key}`);
    assert.equal(ch.status, 401);
  });

  test('a token created without expired_time is expired at once', async () => {
    await c.post('/api/token/', { name: 'noexp', unlimited_quota: true });
    let r = await c.get('/api/token/');
    const t = r.json.data.items.find((x) => x.name === 'noexp');
    assert.equal(t.expired_time, 0);
    const key = (await c.post(`/api/token/${t.id}/key`)).json.data.key;
    const ch = await chat(fr, `sk-${key}`);
    assert.equal(ch.status, 401);
    assert.match(ch.json.error.message, /该令牌已过期/);
    r = await c.get(`/api/token/${t.id}`);
    assert.equal(r.json.data.status, 3);
  });

  test('user models, groups, pricing, logs, trailing-slash redirect, unknown path', async () => {
    let r = await c.get('/api/user/models');
    assert.deepEqual(r.json.data, ['gpt-4o-mini', 'gpt-4o', 'dall-e-3', fr.probeModel]);
    r = await c.get('/api/user/self/groups');
    assert.equal(r.json.data.default.ratio, 1);
    r = await c.get('/api/pricing');
    const mini = r.json.data.find((p) => p.model_name === 'gpt-4o-mini');
    assert.equal(mini.quota_type, 0);
    assert.equal(mini.model_ratio, 0.075);
    assert.equal(mini.completion_ratio, 4);
    assert.equal(r.json.data.find((p) => p.model_name === 'dall-e-3').quota_type, 1);
    assert.deepEqual(r.json.group_ratio, { default: 1 });
    r = await c.get('/api/log/self?p=1&page_size=10');
    assert.ok(r.json.data.items.some((l) => l.type === 2));
    assert.ok(r.json.data.items.some((l) => l.type === 4));
    r = await c.get('/api/token?p=0');
    assert.equal(r.status, 301);
    assert.equal(r.headers.get('location'), '/api/token/?p=0');
    r = await c.post('/api/token', {});
    assert.equal(r.status, 307);
    r = await c.get('/api/nope');
    assert.equal(r.status, 404);
    assert.deepEqual(r.json, { error: { message: 'Invalid URL (GET /api/nope)', type: 'invalid_request_error', param: '', code: '' } });
  });

  test('system access token: Authorization without a session, New-Api-User still needed', async () => {
    const tok = (await c.get('/api/user/token')).json.data;
    assert.ok(tok.length >= 29);
    const t = client(fr.url);
    let r = await t.get('/api/user/self', { headers: { authorization: tok } });
    assert.equal(r.status, 401);
    r = await t.get('/api/user/self', { headers: { authorization: `Bearer ${tok}`, 'New-Api-User': '1' } });
    assert.equal(r.json.data.username, 'alice');
    r = await t.get('/api/user/self', { headers: { authorization: 'Bearer wrong', 'New-Api-User': '1' } });
    assert.equal(r.status, 401);
    assert.match(r.json.message, /access token 无效/);
  });

  test('expired sessions answer the not-logged-in 401', async () => {
    await fetch(`${fr.url}/_fake/expire-sessions`, { method: 'POST' });
    const r = await c.get('/api/user/self');
    assert.equal(r.status, 401);
    assert.equal(r.json.message, '无权进行此操作，未登录且未提供 access token');
  });

  test('html errors: Cloudflare 502 page instead of JSON, until switched off', async () => {
    await fakePlatform(fr, { html_errors: true });
    const r = await c.get('/api/status');
    assert.equal(r.status, 502);
    assert.match(r.headers.get('content-type'), /text\/html/);
    assert.match(r.text, /cloudflare/i);
    await fakePlatform(fr, { html_errors: false });
    assert.equal((await c.get('/api/status')).status, 200);
  });
});

describe('new-api with 2FA, Turnstile and a session TTL', () => {
  let fr;
  before(async () => {
    fr = await start('new-api', ['--totp-secret', TOTP_SECRET, '--turnstile', '--session-ttl-sec', '2']);
  });

  test('Turnstile on login, then 2FA, then the session expires', async () => {
    const c = client(fr.url, { 'New-Api-User': '1' });
    assert.equal((await c.get('/api/status')).json.data.turnstile_check, true);
    let r = await c.post('/api/user/login', { username: 'alice', password: 'secret123' });
    assert.deepEqual(r.json, { success: false, message: 'Turnstile token 为空' });
    r = await c.post('/api/user/login?turnstile=bad', { username: 'alice', password: 'secret123' });
    assert.match(r.json.message, /Turnstile 校验失败/);
    r = await c.post(`/api/user/login?turnstile=${TURNSTILE_OK}`, { username: 'alice', password: 'secret123' });
    assert.deepEqual(r.json, { success: true, message: '请输入两步验证码', data: { require_2fa: true } });
    assert.equal((await c.get('/api/user/self')).status, 401);
    r = await c.post('/api/user/login/2fa', { code: '000000' === totp(TOTP_SECRET) ? '111111' : '000000' });
    assert.equal(r.json.success, false);
    r = await c.post('/api/user/login/2fa', { code: totp(TOTP_SECRET) });
    assert.equal(r.json.success, true);
    assert.equal(r.json.data.username, 'alice');
    r = await c.get('/api/user/self');
    assert.equal(r.json.data.id, 1);
    // The session passed Turnstile: check-in is not challenged again.
    r = await c.post('/api/user/checkin');
    assert.equal(r.json.success, true);
    // An access token has no Turnstile pass.
    const tok = (await c.get('/api/user/token')).json.data;
    await fetch(`${fr.url}/_fake/next-day`, { method: 'POST' });
    const t = client(fr.url, { authorization: tok, 'New-Api-User': '1' });
    r = await t.post('/api/user/checkin');
    assert.deepEqual(r.json, { success: false, message: 'Turnstile token 为空' });
    r = await t.post(`/api/user/checkin?turnstile=${TURNSTILE_OK}`);
    assert.equal(r.json.success, true);
    await sleep(2100);
    r = await c.get('/api/user/self');
    assert.equal(r.status, 401);
    assert.match(r.json.message, /未登录/);
  });
});

// ---- New API, 2026 auth generation ----

describe('new-api-v2', () => {
  let fr;
  before(async () => {
    fr = await start('new-api-v2', ['--session-ttl-sec', '2']);
  });

  test('access token + refresh cookie, AUTH_* errors, refresh rotation, sessions, logout', async () => {
    const c = client(fr.url);
    let r = await c.post('/api/user/login', { username: 'alice', password: 'secret123' });
    assert.equal(r.json.success, true);
    const d = r.json.data;
    assert.equal(d.token_type, 'Bearer');
    assert.ok(d.access_token.split('.').length === 3);
    assert.ok(d.access_expires_at > Date.now() / 1000);
    assert.equal(d.user.id, 1);
    assert.ok(c.jar.get('refresh_token'));
    r = await c.get('/api/user/self');
    assert.equal(r.status, 401);
    assert.equal(r.json.code, 'AUTH_REQUIRED');
    r = await c.get('/api/user/self', { headers: { authorization: `Bearer ${d.access_token}` } });
    assert.equal(r.json.data.quota, 5000000);
    r = await c.get('/api/user/sessions', { headers: { authorization: `Bearer ${d.access_token}` } });
    assert.equal(r.json.data.length, 1);
    assert.equal(r.json.data[0].current, true);
    await sleep(2100);
    r = await c.get('/api/user/self', { headers: { authorization: `Bearer ${d.access_token}` } });
    assert.equal(r.status, 401);
    assert.equal(r.json.code, 'AUTH_TOKEN_EXPIRED');
    const oldRefresh = c.jar.get('refresh_token');
    r = await c.post('/api/user/auth/refresh', {});
    assert.equal(r.json.success, true);
    const fresh = r.json.data.access_token;
    assert.notEqual(fresh, d.access_token);
    r = await c.get('/api/user/self', { headers: { authorization: `Bearer ${fresh}` } });
    assert.equal(r.json.success, true);
    r = await client(fr.url).post('/api/user/auth/refresh', { refresh_token: oldRefresh });
    assert.equal(r.status, 401);
    assert.equal(r.json.code, 'AUTH_REFRESH_INVALID');
    r = await c.post('/api/user/checkin', undefined, { headers: { authorization: `Bearer ${fresh}` } });
    assert.equal(r.json.data.quota_awarded, 300000);
    r = await c.post('/api/user/auth/logout', undefined, { headers: { authorization: `Bearer ${fresh}` } });
    assert.equal(r.json.success, true);
    r = await c.get('/api/user/self', { headers: { authorization: `Bearer ${fresh}` } });
    assert.equal(r.status, 401);
    assert.equal(r.json.code, 'AUTH_TOKEN_EXPIRED');
  });
});

describe('new-api-v2 with 2FA', () => {
  test('flow token finishes the login', async () => {
    const fr = await start('new-api-v2', ['--totp-secret', TOTP_SECRET]);
    const c = client(fr.url);
    let r = await c.post('/api/user/login', { username: 'alice', password: 'secret123' });
    assert.equal(r.json.data.require_2fa, true);
    const flow = r.json.data.flow_token;
    r = await c.post('/api/user/login/2fa', { flow_token: 'bogus', code: totp(TOTP_SECRET) });
    assert.equal(r.status, 401);
    r = await c.post('/api/user/login/2fa', { flow_token: flow, code: totp(TOTP_SECRET) });
    assert.ok(r.json.data.access_token);
  });
});

// ---- AnyRouter ----

describe('anyrouter', () => {
  let fr, c;
  before(async () => {
    fr = await start('anyrouter', ['--challenge', '--tokens', '1']);
    c = client(fr.url, { 'new-api-user': '1', 'x-requested-with': 'XMLHttpRequest' });
  });

  test('the challenge page comes back until the acw_sc__v2 cookie is right', async () => {
    let r = await c.get('/api/status');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /text\/html/);
    assert.match(r.text, /var arg1='[0-9A-F]{40}'/);
    assert.ok(c.jar.get('acw_tc'));
    assert.ok(c.jar.get('cdn_sec_tc'));
    c.jar.set('acw_sc__v2', '0'.repeat(40));
    r = await c.get('/api/status');
    assert.match(r.text, /var arg1=/);
    c.jar.set('acw_sc__v2', solveAcw(r.text));
    r = await c.get('/api/status');
    assert.equal(r.json.success, true);
    assert.equal(r.json.data.system_name, 'AnyRouter');
    // /v1 is shielded too.
    const v1 = await fetch(`${fr.url}/v1/models`, { headers: { authorization: 'Bearer x' } });
    assert.match(await v1.text(), /var arg1=/);
  });

  test('login, sign_in twice (reward only by balance difference), no /api/user/checkin', async () => {
    let r = await c.post('/api/user/login', { username: 'alice', password: 'secret123' });
    assert.equal(r.json.success, true);
    const before = (await c.get('/api/user/self')).json.data;
    r = await c.post('/api/user/sign_in', {});
    assert.deepEqual(r.json, { success: true, message: '签到成功' });
    const mid = (await c.get('/api/user/self')).json.data;
    assert.equal(mid.quota + mid.used_quota - (before.quota + before.used_quota), 300000);
    r = await c.post('/api/user/sign_in', {});
    assert.equal(r.json.success, true);
    const after2 = (await c.get('/api/user/self')).json.data;
    assert.equal(after2.quota, mid.quota);
    r = await c.post('/api/user/checkin');
    assert.equal(r.status, 404);
    assert.equal(r.json.error.message, 'Invalid URL (POST /api/user/checkin)');
  });

  test('tokens and the relay behind the challenge', async () => {
    const r = await c.get('/api/token/?p=0&size=100');
    const key = r.json.data.items[0].key;
    const res = await fetch(`${fr.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer sk-${key}`, cookie: `acw_sc__v2=${c.jar.get('acw_sc__v2')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.status, 200);
    assert.equal((await res.json()).object, 'chat.completion');
  });
});

// ---- One API ----

describe('one-api', () => {
  let fr, c;
  before(async () => {
    fr = await start('one-api', ['--tokens', '12']);
    c = client(fr.url);
  });

  test('login, self with empty secrets, no check-in, no pricing', async () => {
    let r = await c.get('/api/status');
    assert.equal(r.json.data.system_name, 'One API');
    assert.equal(r.json.data.quota_display_type, undefined);
    r = await c.post('/api/user/login', { username: 'alice', password: 'secret123' });
    assert.equal(r.json.data.quota, 0, 'the login answer is not the balance');
    r = await c.get('/api/user/self');
    assert.equal(r.json.data.quota, 5000000);
    assert.equal(r.json.data.password, '');
    assert.equal(r.json.data.access_token, '');
    r = await c.post('/api/user/checkin');
    assert.equal(r.status, 404);
    r = await c.get('/api/pricing');
    assert.equal(r.status, 404);
    r = await c.get('/api/user/available_models');
    assert.ok(r.json.data.includes('gpt-4o-mini'));
  });

  test('tokens: 0-based pages of 10 whatever size says; create returns the key', async () => {
    let r = await c.get('/api/token/?p=0&size=100');
    assert.equal(r.json.data.length, 10);
    r = await c.get('/api/token/?p=1');
    assert.equal(r.json.data.length, 2);
    assert.match(r.json.data[0].key, /^[A-Za-z0-9]{48}$/);
    r = await c.post('/api/token/', { name: 'x'.repeat(31), expired_time: -1, unlimited_quota: true });
    assert.deepEqual(r.json, { success: false, message: '参数错误：令牌名称过长' });
    r = await c.post('/api/token/', { name: 'gw', remain_quota: 0, expired_time: -1, unlimited_quota: true });
    assert.equal(r.json.data.name, 'gw');
    const key = r.json.data.key;
    const ch = await chat(fr, `sk-${key}`);
    assert.equal(ch.status, 200);
    const bad = await chat(fr, 'sk-bad');
    assert.equal(bad.json.error.type, 'one_api_error');
    const sub = await (await fetch(`${fr.url}/v1/dashboard/billing/subscription`, { headers: { authorization: `Bearer sk-${key}` } })).json();
    assert.equal(sub.object, 'billing_subscription');
    const models = await (await fetch(`${fr.url}/v1/models`, { headers: { authorization: `Bearer sk-${key}` } })).json();
    assert.ok(Array.isArray(models.data[0].permission));
  });

  test('access token without a user header; a bad one is HTTP 200 success:false', async () => {
    const tok = (await c.get('/api/user/token')).json.data;
    assert.match(tok, /^[0-9a-f]{32}$/);
    let r = await client(fr.url).get('/api/user/self', { headers: { authorization: `Bearer ${tok}` } });
    assert.equal(r.json.data.username, 'alice');
    r = await client(fr.url).get('/api/user/self', { headers: { authorization: 'Bearer nope' } });
    assert.equal(r.status, 200);
    assert.equal(r.json.success, false);
  });
});

// ---- OneHub / DoneHub ----

describe('one-hub', () => {
  let fr, c;
  before(async () => {
    fr = await start('one-hub', ['--tokens', '1']);
    c = client(fr.url);
  });

  test('status, login, self with the access token', async () => {
    let r = await c.get('/api/status');
    assert.equal(r.json.data.PaymentUSDRate, 7.3);
    r = await c.post('/api/user/login', { username: 'alice', password: 'secret123' });
    assert.equal(r.json.success, true);
    const tok = (await c.get('/api/user/token')).json.data;
    r = await c.get('/api/user/self');
    assert.equal(r.json.data.access_token, tok);
    assert.equal(r.json.data.quota, 5000000);
    assert.equal((await c.post('/api/user/checkin')).status, 404);
  });

  test('tokens {data,page,size,total_count}, size over 100 refused, create without key', async () => {
    let r = await c.get('/api/token/?page=1&size=100');
    assert.equal(r.json.data.total_count, 1);
    assert.match(r.json.data.data[0].key, /^[A-Za-z0-9]{16}_[A-Za-z0-9_-]{43}$/);
    r = await c.get('/api/token/?page=1&size=101');
    assert.deepEqual(r.json, { success: false, message: 'size 参数不能超过 100' });
    r = await c.post('/api/token/', { name: 'gw', remain_quota: 0, unlimited_quota: true, expired_time: -1, group: '' });
    assert.deepEqual(r.json, { success: true, message: '' });
    r = await c.get('/api/token/?p=0&size=100');
    const gw = r.json.data.data.find((t) => t.name === 'gw');
    assert.equal((await chat(fr, gw.key)).status, 200);
    assert.equal((await chat(fr, `sk-${gw.key}`)).status, 200);
  });

  test('available_model and user_group_map read the cookie only; prices are public', async () => {
    let r = await c.get('/api/user_group_map');
    assert.ok(r.json.data.vip);
    const tok = (await c.get('/api/user/token')).json.data;
    r = await client(fr.url).get('/api/user_group_map', { headers: { authorization: `Bearer ${tok}` } });
    assert.equal(r.json.data.vip, undefined);
    r = await c.get('/api/available_model');
    assert.equal(r.json.data['gpt-4o-mini'].price.type, 'tokens');
    assert.equal(r.json.data['gpt-4o-mini'].price.input, 0.075);
    r = await c.get('/api/prices');
    assert.ok(r.json.data.some((p) => p.model === 'dall-e-3' && p.type === 'times'));
  });

  test('relay: one_hub_error, 402 when the user is out of quota', async () => {
    const key = (await c.get('/api/token/')).json.data.data[0].key;
    await fakePlatform(fr, { quota: 0 });
    const ch = await chat(fr, key);
    assert.equal(ch.status, 402);
    assert.equal(ch.json.error.type, 'one_hub_error');
    assert.equal(ch.json.error.code, 'insufficient_user_quota');
    await fakePlatform(fr, { quota: 5000000 });
  });
});

describe('done-hub', () => {
  test('its status and the unreadable-session answer', async () => {
    const fr = await start('done-hub');
    const c = client(fr.url);
    let r = await c.get('/api/status');
    assert.equal(r.json.data.system_name, 'Done Hub');
    assert.equal(r.json.data.GeminiAPIEnabled, true);
    assert.equal(r.json.data.max_log_query_days, 30);
    r = await c.get('/api/user/self', { headers: { cookie: 'session=garbage' } });
    assert.equal(r.status, 401);
    assert.equal(r.json.message, '无权进行此操作，会话无效');
  });
});

// ---- Veloera ----

describe('veloera', () => {
  let fr, c;
  before(async () => {
    fr = await start('veloera', ['--tokens', '1', '--checkin-reward', '250000']);
    c = client(fr.url);
  });

  test('Veloera-User header, check_in_status, check_in twice with data.quota', async () => {
    let r = await c.get('/api/status');
    assert.equal(r.json.data.check_in_enabled, true);
    r = await c.post('/api/user/login', { username: 'alice', password: 'secret123' });
    assert.equal(r.json.data.quota, 0);
    r = await c.get('/api/user/self', { headers: { 'New-Api-User': '1' } });
    assert.equal(r.status, 401);
    assert.match(r.json.message, /Veloera-User/);
    c.headers['Veloera-User'] = '1';
    r = await c.get('/api/user/check_in_status');
    assert.deepEqual(r.json.data, { can_check_in: true });
    r = await c.post('/api/user/check_in');
    assert.deepEqual(r.json, { success: true, message: '签到成功', data: { quota: 250000 } });
    r = await c.post('/api/user/check_in');
    assert.deepEqual(r.json, { success: false, message: '你今天已经签到过了' });
    r = await c.get('/api/user/check_in_status');
    assert.equal(r.json.data.can_check_in, false);
    r = await c.get('/api/user/self');
    assert.equal(r.json.data.quota, 5250000);
    assert.ok(r.json.data.last_check_in_time > 0);
    assert.equal((await c.post('/api/user/checkin')).status, 404);
  });

  test('tokens as a plain array with full keys, no key route, old pricing, relay errors', async () => {
    let r = await c.get('/api/token/?p=0&size=100');
    assert.ok(Array.isArray(r.json.data));
    const key = r.json.data[0].key;
    assert.match(key, /^[A-Za-z0-9]{48}$/);
    r = await c.post(`/api/token/${r.json.data[0].id}/key`);
    assert.equal(r.status, 404);
    r = await c.get('/api/pricing');
    assert.equal(r.json.vendors, undefined);
    assert.deepEqual(r.json.usable_group, { default: '默认分组' });
    const models = await (await fetch(`${fr.url}/v1/models`, { headers: { authorization: `Bearer sk-${key}` } })).json();
    assert.equal(models.success, true);
    assert.equal(models.object, undefined);
    assert.equal((await chat(fr, `sk-${key}`)).status, 200);
    assert.equal((await chat(fr, 'sk-bad')).json.error.type, 'veloera_error');
  });
});

// ---- Sub2API ----

describe('sub2api', () => {
  let fr, c, jwt, refresh;
  before(async () => {
    fr = await start('sub2api', ['--tokens', '1', '--session-ttl-sec', '2'], ['claude-sonnet-4-5-20250929', 'gpt-4o-mini']);
    c = client(fr.url);
  });

  test('settings, wrong password, login by e-mail, balance in USD', async () => {
    let r = await c.get('/api/v1/settings/public');
    assert.equal(r.json.code, 0);
    assert.equal(r.json.data.site_name, 'Sub2API');
    r = await c.post('/api/v1/auth/login', { email: 'alice@example.com', password: 'bad' });
    assert.equal(r.status, 401);
    assert.equal(r.json.reason, 'INVALID_CREDENTIALS');
    r = await c.post('/api/v1/auth/login', { email: 'alice@example.com', password: 'secret123' });
    assert.equal(r.json.code, 0);
    jwt = r.json.data.access_token;
    refresh = r.json.data.refresh_token;
    assert.equal(r.json.data.expires_in, 2);
    r = await c.get('/api/v1/auth/me');
    assert.deepEqual(r.json, { code: 'UNAUTHORIZED', message: 'Authorization header is required' });
    c.headers.authorization = `Bearer ${jwt}`;
    r = await c.get('/api/v1/auth/me');
    assert.equal(r.json.data.balance, 10);
  });

  test('keys: full list, create returns the key, page_size over 100 falls back to 20', async () => {
    let r = await c.get('/api/v1/keys?page=1&page_size=100');
    assert.equal(r.json.data.total, 1);
    assert.match(r.json.data.items[0].key, /^sk-[0-9a-f]{64}$/);
    r = await c.get('/api/v1/keys?page=1&page_size=500');
    assert.equal(r.json.data.page_size, 20);
    r = await c.get('/api/v1/groups/available');
    assert.equal(r.json.data[0].platform, 'anthropic');
    r = await c.post('/api/v1/keys', { group_id: 3 });
    assert.equal(r.status, 400);
    r = await c.post('/api/v1/keys', { name: 'gw', group_id: 3 });
    const key = r.json.data.key;
    assert.match(key, /^sk-[0-9a-f]{64}$/);
    assert.equal((await chat(fr, key, 'claude-sonnet-4-5-20250929')).status, 200);
    const bad = await chat(fr, 'sk-nope');
    assert.deepEqual(bad.json, { code: 'INVALID_API_KEY', message: 'Invalid API key' });
    const models = await (await fetch(`${fr.url}/v1/models`, { headers: { 'x-api-key': key } })).json();
    assert.equal(models.data[0].type, 'model');
    const usage = await (await fetch(`${fr.url}/v1/usage`, { headers: { authorization: `Bearer ${key}` } })).json();
    assert.equal(usage.unit, 'USD');
    assert.ok(usage.remaining < 10);
    r = await c.del(`/api/v1/keys/${(await c.get('/api/v1/keys')).json.data.items[0].id}`);
    assert.equal(r.json.data.message, 'API key deleted successfully');
  });

  test('no check-in: plain-text 404; the JWT expires and refresh gives a new one', async () => {
    let r = await c.post('/api/v1/checkin');
    assert.equal(r.status, 404);
    assert.equal(r.text, '404 page not found');
    await sleep(2100);
    r = await c.get('/api/v1/auth/me');
    assert.deepEqual(r.json, { code: 'TOKEN_EXPIRED', message: 'Token has expired' });
    r = await client(fr.url).post('/api/v1/auth/refresh', { refresh_token: refresh });
    assert.equal(r.json.code, 0);
    r = await client(fr.url).get('/api/v1/auth/me', { headers: { authorization: `Bearer ${r.json.data.access_token}` } });
    assert.equal(r.json.data.email, 'alice@example.com');
  });

  test('2FA with a temp token', async () => {
    const fr2 = await start('sub2api', ['--totp-secret', TOTP_SECRET]);
    const c2 = client(fr2.url);
    let r = await c2.post('/api/v1/auth/login', { email: 'alice@example.com', password: 'secret123' });
    assert.equal(r.json.data.requires_2fa, true);
    r = await c2.post('/api/v1/auth/login/2fa', { temp_token: r.json.data.temp_token, totp_code: totp(TOTP_SECRET) });
    assert.ok(r.json.data.access_token);
  });
});

test('bad platform options are refused with exit code 2', async () => {
  const { spawnSync } = await import('node:child_process');
  const { FAKERELAY_BIN } = await import('./lib/harness.mjs');
  for (const args of [['--platform', 'nope'], ['--platform', 'new-api', '--quota', 'x'], ['--totp-secret', '!!!'], ['--platform']]) {
    const r = spawnSync(FAKERELAY_BIN, ['--port', '0', ...args], { encoding: 'utf8' });
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /fakerelay:/);
  }
});

test('bad input: broken JSON, huge ids, concurrent workers sharing one state', async () => {
  const fr = await start('new-api', ['--workers', '4']);
  const c = client(fr.url, { 'New-Api-User': '1' });
  let r = await c.post('/api/user/login', '{"username":');
  assert.deepEqual(r.json, { success: false, message: '无效的参数' });
  r = await c.post('/api/user/login', '[1,2]');
  assert.equal(r.json.success, false);
  await c.post('/api/user/login', { username: 'alice', password: 'secret123' });
  r = await c.del('/api/token/99999999999999999999999');
  assert.equal(r.status, 404);
  r = await c.del('/api/token/424242');
  assert.equal(r.json.success, false);
  r = await c.req('PUT', '/api/token/', { body: { name: 'x' } });
  assert.equal(r.json.success, false);
  // Many check-ins at once from several workers: exactly one succeeds.
  const results = await Promise.all(Array.from({ length: 24 }, () => c.post('/api/user/checkin')));
  assert.equal(results.filter((x) => x.json.success).length, 1);
  // Many creations at once: every one gets its own id and key.
  await Promise.all(Array.from({ length: 20 }, (_, i) => c.post('/api/token/', { name: `t${i}`, expired_time: -1, unlimited_quota: true })));
  r = await c.get('/api/token/?p=1&size=100');
  assert.equal(r.json.data.total, 20);
  assert.equal(new Set(r.json.data.items.map((t) => t.id)).size, 20);
  assert.equal(new Set(r.json.data.items.map((t) => t.key)).size, 20);
  const st = await fakeStats(fr);
  assert.equal(st.checkins.alice, 1);
});
