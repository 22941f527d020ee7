// platforms.test.mjs — the control plane end to end, for every relay platform against its
// emulation (fakerelay --platform): add an account by password → balance in USD →
// check-in (reward logged; a second trigger the same day is skipped; after the site's
// next day it runs again; platforms without check-in answer "skipped") → tokens synced
// with full keys (masked ones recovered) → models and prices discovered → a
// /v1/chat/completions request with the official openai SDK routed through that
// account's synced key. Then the bad inputs: an unreachable site, HTML instead of JSON,
// an expired session in the middle of a job (re-login), a wrong password (account
// expired with an event), and the other sites unaffected throughout.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  fakeStats,
  listOf,
  routableModels,
  startFakeRelay,
  startMetarelay,
  statLastRequest,
  stopAll,
  unique,
  waitFor,
} from './lib/harness.mjs';

const PASSWORD = 'secret123';
const QUOTA = 5000000; // raw quota units the emulator seeds
const REWARD = 300000; // raw quota per check-in

// platform id → how the emulation is seeded and what the platform can do.
const PLATFORMS = [
  { id: 'new-api', qpu: 500000, checkin: true, args: ['--masked-keys'] },
  { id: 'anyrouter', qpu: 500000, checkin: true, args: ['--masked-keys'] },
  { id: 'one-api', qpu: 500000, checkin: false },
  { id: 'one-hub', qpu: 500000, checkin: false },
  { id: 'done-hub', qpu: 500000, checkin: false },
  { id: 'veloera', qpu: 1000000, checkin: true },
  { id: 'sub2api', qpu: 500000, checkin: false, user: 'alice@example.com' },
];

const close = (a, b, eps = 1e-6) => Math.abs(a - b) < eps;

async function ok(r, what) {
  assert.ok(r.status >= 200 && r.status < 300, `${what} → ${r.status} ${r.text}`);
  return r.body;
}

describe('relay platforms through the control plane', () => {
  let mr;
  const children = [];
  const accounts = {}; // platform id → {fr, siteId, accountId, model}

  before(async () => {
    mr = await startMetarelay({ CONTROL_CONCURRENCY: '4' });
    children.push(mr);
  });

  after(async () => {
    await stopAll(children);
  });

  for (const p of PLATFORMS) {
    test(`${p.id}: login, balance, check-in, tokens, models, prices, relay`, async () => {
      const model = `m-${p.id}-${unique('x')}`;
      const fr = await startFakeRelay({
        name: unique(p.id),
        models: ['gpt-4o-mini', model],
        args: ['--platform', p.id, '--tokens', '2', '--quota-per-unit', String(p.qpu), '--quota', String(QUOTA),
          '--checkin-reward', String(REWARD), ...(p.args || [])],
      });
      children.push(fr);

      // the platform is detected from the URL
      const det = await ok(await mr.admin('POST', '/api/sites/detect', { url: fr.url }), 'detect');
      // AnyRouter on 127.0.0.1 without its shield is a New API by every signature.
      const want = p.id === 'anyrouter' ? ['anyrouter', 'new-api'] : [p.id];
      assert.ok(want.includes(det.platform), `detected ${det.platform} for ${p.id}`);

      const site = await ok(await mr.admin('POST', '/api/sites', { name: fr.name, url: fr.url, platform: p.id }), 'site');
      const login = await mr.admin('POST', '/api/accounts/login', {
        siteId: site.id, username: p.user || 'alice', password: PASSWORD,
      });
      const body = await ok(login, `login to ${p.id}`);
      const acct = body.account;
      assert.equal(acct.credentialMode, 'session');
      assert.equal(acct.status, 'active');
      assert.equal(acct.hasPassword, true);
      assert.ok(!login.text.includes(PASSWORD), 'the password never comes back');

      // balance in USD: raw quota / quota_per_unit
      const bal = await ok(await mr.admin('POST', `/api/accounts/${acct.id}/balance`), 'balance');
      assert.equal(bal.account.currency, 'USD');
      assert.ok(close(bal.account.balance, QUOTA / p.qpu), `balance ${bal.account.balance} != ${QUOTA / p.qpu}`);

      // check-in
      const c1 = await ok(await mr.admin('POST', `/api/checkin/trigger/${acct.id}`), 'check-in');
      if (p.checkin) {
        assert.equal(c1.status, 'success', JSON.stringify(c1));
        assert.ok(close(c1.reward, REWARD / p.qpu), `reward ${c1.reward} != ${REWARD / p.qpu}`);
        const c2 = await ok(await mr.admin('POST', `/api/checkin/trigger/${acct.id}`), 'check-in again');
        assert.equal(c2.status, 'skipped', JSON.stringify(c2));
        const stats = await fakeStats(fr);
        const granted = Object.values(stats.checkins || {}).reduce((a, b) => a + b, 0);
        assert.equal(granted, 1, `the site granted ${granted} check-ins the same day`);
        const nd = await fetch(`${fr.url}/_fake/next-day`, { method: 'POST' });
        assert.equal(nd.status, 200);
        const c3 = await ok(await mr.admin('POST', `/api/checkin/trigger/${acct.id}`), 'check-in next day');
        assert.equal(c3.status, 'success', JSON.stringify(c3));
        const logs = await ok(await mr.admin('GET', `/api/checkin/logs?accountId=${acct.id}`), 'logs');
        assert.deepEqual(logs.items.map((l) => l.status), ['success', 'skipped', 'success']);
        assert.ok(close(logs.items[2].reward, REWARD / p.qpu));
      } else {
        assert.equal(c1.status, 'skipped', JSON.stringify(c1));
        assert.match(c1.message, /no check-in/);
      }

      // tokens: every key full (masked ones recovered through the key endpoint)
      const sync = await ok(await mr.admin('POST', `/api/account-tokens/sync/${acct.id}`), 'sync');
      assert.equal(sync.maskedPending, 0, JSON.stringify(sync));
      const toks = listOf((await mr.admin('GET', `/api/account-tokens?accountId=${acct.id}`)).body);
      assert.ok(toks.length >= 2, `tokens: ${JSON.stringify(toks)}`);
      const state = await (await fetch(`${fr.url}/_fake/platform`)).json();
      const siteKeys = JSON.stringify(state);
      for (const t of toks) {
        assert.equal(t.valueStatus, 'ready');
        assert.ok(!('token' in t) && !('key' in t), 'the list never shows a key');
        const v = await ok(await mr.admin('GET', `/api/account-tokens/${t.id}/value`), 'value');
        assert.ok(!v.token.includes('*'), `masked key ${v.token}`);
        const bare = v.token.replace(/^sk-/, '');
        assert.ok(siteKeys.includes(bare), `key ${t.tokenMasked} is not one the site issued`);
      }

      // models and prices
      const models = await ok(await mr.admin('GET', `/api/accounts/${acct.id}/models`), 'models');
      const names = models.models.map((m) => m.modelName);
      assert.ok(names.includes(model) && names.includes('gpt-4o-mini'), `models: ${names}`);
      if (['new-api', 'anyrouter', 'one-hub', 'done-hub', 'veloera'].includes(p.id))
        assert.ok(models.prices.length > 0, `no prices discovered on ${p.id}`);

      // /v1 through the synced key, with the official SDK
      await waitFor(async () => (await routableModels(mr)).includes(model), { what: `${model} routable` });
      const out = await mr.openai().chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] });
      assert.match(out.choices[0].message.content, /hi/);
      const last = statLastRequest(await fakeStats(fr));
      const auth = String(last.headers.authorization || last.headers.Authorization || '');
      const keys = [];
      for (const t of toks) keys.push((await mr.admin('GET', `/api/account-tokens/${t.id}/value`)).body.token);
      assert.ok(keys.some((k) => auth.endsWith(k.replace(/^sk-/, ''))), `relay saw ${auth.slice(0, 12)}…, not a synced key`);

      // balance history and today's spend: the relay charged for that request
      await ok(await mr.admin('POST', `/api/accounts/${acct.id}/balance`), 'balance after the relay');
      const hist = await ok(await mr.admin('GET', `/api/accounts/${acct.id}/balance-history?limit=10`), 'history');
      assert.ok(hist.items.length >= 2, `history: ${JSON.stringify(hist)}`);
      assert.ok(hist.todaySpend > 0, `today's spend after a charged relay request: ${JSON.stringify(hist)}`);
      const listed = listOf((await mr.admin('GET', '/api/accounts')).body).find((x) => x.id === acct.id);
      assert.ok(Math.abs(listed.todaySpend - hist.todaySpend) < 1e-9, 'the account list shows the same spend');

      accounts[p.id] = { fr, siteId: site.id, accountId: acct.id, model };
    });
  }

  // The acw_sc__v2 shield on management calls (the adapter solves it) and on /v1 (the data
  // plane solves it and retries the channel with the cookie).
  test('anyrouter behind its acw_sc__v2 challenge: login, balance, check-in, tokens, relay', async () => {
    const shieldedModel = unique('m-acw');
    const fr = await startFakeRelay({
      name: unique('acw'),
      models: ['gpt-4o-mini', shieldedModel],
      args: ['--platform', 'anyrouter', '--challenge', '--masked-keys', '--tokens', '1'],
    });
    children.push(fr);
    const det = await ok(await mr.admin('POST', '/api/sites/detect', { url: fr.url }), 'detect');
    assert.equal(det.platform, 'anyrouter', 'the challenge page gives AnyRouter away');
    const site = await ok(await mr.admin('POST', '/api/sites', { name: fr.name, url: fr.url, platform: 'anyrouter' }), 'site');
    const login = await ok(await mr.admin('POST', '/api/accounts/login', { siteId: site.id, username: 'alice', password: PASSWORD }), 'login');
    assert.ok(close(login.account.balance, QUOTA / 500000));
    const c = await ok(await mr.admin('POST', `/api/checkin/trigger/${login.account.id}`), 'check-in');
    assert.equal(c.status, 'success', JSON.stringify(c));
    assert.ok(close(c.reward, REWARD / 500000), `reward from the balance difference: ${c.reward}`);
    const again = await ok(await mr.admin('POST', `/api/checkin/trigger/${login.account.id}`), 'again');
    assert.equal(again.status, 'skipped', JSON.stringify(again));
    const toks = listOf((await mr.admin('GET', `/api/account-tokens?accountId=${login.account.id}`)).body);
    assert.ok(toks.length >= 1 && toks.every((t) => t.valueStatus === 'ready'), JSON.stringify(toks));

    // /v1 through the shielded site: the data plane meets the challenge page too, solves
    // it, and retries the same channel with the cookie.
    await waitFor(async () => (await routableModels(mr)).includes(shieldedModel), { what: `${shieldedModel} routable` });
    const out = await mr.openai().chat.completions.create({
      model: shieldedModel,
      messages: [{ role: 'user', content: 'hi through the shield' }],
    });
    assert.match(out.choices[0].message.content, /hi through the shield/);
    assert.ok(out.choices[0].message.content.includes(fr.name), 'answered by the shielded relay');
    const last = statLastRequest(await fakeStats(fr));
    assert.match(String(last.headers['user-agent'] || ''), /OpenAI\/JS/, 'the last request is the relayed one');
    const cookie = String(last.headers.cookie || last.headers.Cookie || '');
    assert.match(cookie, /acw_sc__v2=[0-9a-f]{40}/, 'the relayed request carried the solved cookie');
  });

  test('check-in of every account in the control pool, with wait', async () => {
    const r = await ok(await mr.admin('POST', '/api/checkin/trigger?wait=1'), 'trigger all');
    assert.equal(r.done, true);
    assert.equal(r.failed, 0, JSON.stringify(r));
    const r2 = await mr.admin('POST', '/api/account-tokens/sync-all', { wait: true });
    assert.equal(r2.status, 200, r2.text);
    assert.equal(r2.body.failed, 0, r2.text);
  });

  test('expired session in the middle of a job: re-login with the stored password', async () => {
    const a = accounts['new-api'];
    assert.ok(a, 'the new-api account exists');
    const ex = await fetch(`${a.fr.url}/_fake/expire-sessions`, { method: 'POST' });
    assert.equal(ex.status, 200);
    const bal = await ok(await mr.admin('POST', `/api/accounts/${a.accountId}/balance`), 'balance after expiry');
    assert.equal(bal.account.status, 'active');
    const sync = await ok(await mr.admin('POST', `/api/account-tokens/sync/${a.accountId}`), 'sync after expiry');
    assert.ok(sync.synced >= 2);
  });

  test('wrong password: clear message; a stale session with a wrong password expires the account', async () => {
    const a = accounts['veloera'] || accounts['new-api'];
    const bad = await mr.admin('POST', '/api/accounts/login', { siteId: a.siteId, username: 'alice', password: 'nope' });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.body.success, false);
    assert.match(bad.body.message, /login|password|auth/i);

    const created = await ok(await mr.admin('POST', '/api/accounts', {
      siteId: a.siteId, username: 'alice', password: 'nope', accessToken: 'bogus-token', platformUserId: 1,
    }), 'account with a stale session');
    const id = created.id;
    const r = await mr.admin('POST', `/api/accounts/${id}/balance`);
    assert.equal(r.status, 400, r.text);
    const acct = (await mr.admin('GET', `/api/accounts/${id}`)).body;
    assert.equal(acct.status, 'expired');
    assert.ok(acct.statusReason && acct.statusReason.length > 10, acct.statusReason);
    const ev = await ok(await mr.admin('GET', `/api/events?type=status&accountId=${id}`), 'events');
    assert.ok(ev.some((e) => e.level === 'error' && /expired/i.test(e.title)), JSON.stringify(ev));
  });

  test('unreachable site and HTML instead of JSON: clear errors, nothing stored', async () => {
    const dead = await ok(await mr.admin('POST', '/api/sites', { name: unique('dead'), url: 'http://127.0.0.1:9/dead', platform: 'new-api' }), 'dead site');
    const r = await mr.admin('POST', '/api/accounts/login', { siteId: dead.id, username: 'alice', password: PASSWORD });
    assert.equal(r.status, 502, r.text);
    assert.match(r.body.message, /unreachable|connect/i);

    const html = await startFakeRelay({ name: unique('html'), args: ['--platform', 'new-api', '--html-errors'] });
    children.push(html);
    const hs = await ok(await mr.admin('POST', '/api/sites', { name: html.name, url: html.url, platform: 'new-api' }), 'html site');
    const r2 = await mr.admin('POST', '/api/accounts/login', { siteId: hs.id, username: 'alice', password: PASSWORD });
    assert.equal(r2.status, 502, r2.text);
    assert.match(r2.body.message, /bad response|HTML|JSON/i);
    const accts = listOf((await mr.admin('GET', `/api/accounts?siteId=${hs.id}`)).body);
    assert.equal(accts.length, 0);
  });

  test('the other sites are unaffected', async () => {
    for (const [id, a] of Object.entries(accounts)) {
      const acct = (await mr.admin('GET', `/api/accounts/${a.accountId}`)).body;
      assert.equal(acct.status, 'active', `${id}: ${acct.statusReason}`);
      const out = await mr.openai().chat.completions.create({ model: a.model, messages: [{ role: 'user', content: 'still there?' }] });
      assert.ok(out.choices[0].message.content.length > 0);
    }
  });
});
