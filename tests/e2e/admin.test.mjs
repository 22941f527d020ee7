// admin.test.mjs — the admin API of metarelay (/api/*): authentication, sites and
// accounts CRUD with their validation errors, secrets never returned in full, and the
// models check against a relay (successful, and with a key the relay refuses).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  AUTH_TOKEN,
  idOf,
  listOf,
  routableModels,
  startFakeRelay,
  startMetarelay,
  stopAll,
  unique,
  waitFor,
} from './lib/harness.mjs';

/** Asserts the admin error shape {"success":false,"message":…} with the given status. */
function assertAdminError(r, status) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.text}`);
  assert.ok(r.body && r.body.success === false, `not an admin error: ${r.text}`);
  assert.equal(typeof r.body.message, 'string');
  assert.ok(r.body.message.length > 0);
}

function assertCreated(r) {
  assert.ok(r.status === 200 || r.status === 201, `expected 200/201, got ${r.status}: ${r.text}`);
  const id = idOf(r.body);
  assert.ok(id !== undefined && id !== null, `no id in ${r.text}`);
  return id;
}

// metarelay refuses a second site with the same platform and URL (409), so every site a
// test creates gets its own URL: a dead one (nothing listens on port 9) with its own path,
// or its own fakerelay.
let deadCounter = 0;
const deadUrl = () => `http://127.0.0.1:9/dead-${++deadCounter}`;

/** The object itself, whether answered bare or wrapped. */
function objOf(body) {
  if (body && typeof body === 'object' && body.id === undefined) return body.data ?? body.site ?? body.account ?? body.item ?? body;
  return body;
}

describe('admin API', () => {
  let mr;
  const children = [];
  /** A relay of its own for one test (one site per platform and URL). */
  const freshRelay = async () => {
    const fr = await startFakeRelay({ name: unique('admin'), models: ['gpt-4o-mini', 'gpt-4o'] });
    children.push(fr);
    return fr;
  };
  // Every response text the tests saw, to check no secret ever appears in one.
  const seen = [];

  before(async () => {
    mr = await startMetarelay();
    children.push(mr);
    const admin = mr.admin.bind(mr);
    mr.admin = async (...args) => {
      const r = await admin(...args);
      seen.push(r.text);
      return r;
    };
  });

  after(async () => {
    await stopAll(children);
  });

  test('no token → 401, wrong token → 403, on reads and writes', async () => {
    for (const [method, p, body] of [
      ['GET', '/api/sites'],
      ['GET', '/api/accounts'],
      ['POST', '/api/sites', { name: 'x', url: 'http://127.0.0.1:9', platform: 'openai' }],
      ['GET', '/api/stats/proxy-logs'],
    ]) {
      assertAdminError(await mr.admin(method, p, body, { token: null }), 401);
      assertAdminError(await mr.admin(method, p, body, { token: 'wrong-admin-token' }), 403);
      assertAdminError(await mr.admin(method, p, body, { token: AUTH_TOKEN.slice(0, -1) }), 403);
    }
    // the rejected POSTs created nothing
    const list = await mr.admin('GET', '/api/sites');
    assert.equal(list.status, 200);
    assert.equal(listOf(list.body, 'sites').length, 0);
  });

  test('the proxy token is not an admin token', async () => {
    const { PROXY_TOKEN } = await import('./lib/harness.mjs');
    assertAdminError(await mr.admin('GET', '/api/sites', undefined, { token: PROXY_TOKEN }), 403);
  });

  test('sites: create, list, update, delete', async () => {
    const name = unique('site');
    const url = deadUrl();
    const created = await mr.admin('POST', '/api/sites', { name, url, platform: 'openai' });
    const id = assertCreated(created);
    const obj = objOf(created.body);
    assert.equal(obj.name, name);
    assert.equal(obj.platform, 'openai');
    assert.equal(obj.url, url);

    let list = await mr.admin('GET', '/api/sites');
    assert.equal(list.status, 200);
    assert.ok(listOf(list.body, 'sites').some((s) => s.id === id && s.name === name));

    const renamed = `${name}-renamed`;
    const upd = await mr.admin('PUT', `/api/sites/${id}`, { name: renamed, url, platform: 'openai' });
    assert.equal(upd.status, 200, upd.text);
    list = await mr.admin('GET', '/api/sites');
    assert.ok(listOf(list.body, 'sites').some((s) => s.id === id && s.name === renamed));

    const del = await mr.admin('DELETE', `/api/sites/${id}`);
    assert.equal(del.status, 200, del.text);
    list = await mr.admin('GET', '/api/sites');
    assert.ok(!listOf(list.body, 'sites').some((s) => s.id === id));
    assertAdminError(await mr.admin('DELETE', `/api/sites/${id}`), 404);
  });

  test('sites: validation errors', async () => {
    const good = { name: unique('v'), url: deadUrl(), platform: 'openai' };
    assertAdminError(await mr.admin('POST', '/api/sites', { ...good, url: 'not a url' }), 400);
    assertAdminError(await mr.admin('POST', '/api/sites', { ...good, url: 'ftp://127.0.0.1/' }), 400);
    assertAdminError(await mr.admin('POST', '/api/sites', { ...good, url: '' }), 400);
    assertAdminError(await mr.admin('POST', '/api/sites', { ...good, platform: 'no-such-platform' }), 400);
    assertAdminError(await mr.admin('POST', '/api/sites', { url: good.url, platform: 'openai' }), 400);
    assertAdminError(await mr.admin('POST', '/api/sites', { ...good, name: 42 }), 400);
    assertAdminError(await mr.admin('POST', '/api/sites', undefined, { rawBody: '{"name":"x",' }), 400);
    assertAdminError(await mr.admin('POST', '/api/sites', undefined, { rawBody: '[]' }), 400);
    // none of those created a site
    const list = await mr.admin('GET', '/api/sites');
    assert.ok(!listOf(list.body, 'sites').some((s) => s.name === good.name));

    const first = await mr.admin('POST', '/api/sites', good);
    const id = assertCreated(first);
    assertAdminError(await mr.admin('POST', '/api/sites', good), 409);
    const after409 = await mr.admin('GET', '/api/sites');
    assert.equal(listOf(after409.body, 'sites').filter((s) => s.url === good.url).length, 1);
    // the same URL under another name is the same site too
    assertAdminError(await mr.admin('POST', '/api/sites', { ...good, name: unique('other-name') }), 409);

    assertAdminError(await mr.admin('PUT', '/api/sites/999999', good), 404);
    assertAdminError(await mr.admin('DELETE', '/api/sites/999999'), 404);
    assertAdminError(await mr.admin('PUT', `/api/sites/${id}`, { ...good, url: 'nope' }), 400);
    assertAdminError(await mr.admin('PUT', `/api/sites/${id}`, undefined, { rawBody: '{' }), 400);
    assert.equal((await mr.admin('DELETE', `/api/sites/${id}`)).status, 200);
  });

  test('unknown admin path → 404 in the admin error shape', async () => {
    assertAdminError(await mr.admin('GET', '/api/no-such-thing'), 404);
  });

  test('accounts: create, list, update, delete; the apiToken is never returned in full', async () => {
    const site = await mr.admin('POST', '/api/sites', { name: unique('acct-site'), url: deadUrl(), platform: 'openai' });
    const siteId = assertCreated(site);
    const secret = `sk-very-secret-${unique('tok')}-abcdefghijklmnop`;
    const created = await mr.admin('POST', '/api/accounts', { siteId, apiToken: secret });
    const id = assertCreated(created);
    const obj = objOf(created.body);
    assert.equal(obj.siteId, siteId);
    assert.equal(typeof obj.apiTokenMasked, 'string');
    assert.notEqual(obj.apiTokenMasked, secret);
    assert.ok(obj.apiTokenMasked.length > 0);
    assert.ok(!created.text.includes(secret), 'the created account answer contains the full token');

    const list = await mr.admin('GET', '/api/accounts');
    assert.equal(list.status, 200);
    const row = listOf(list.body, 'accounts').find((a) => a.id === id);
    assert.ok(row, `account ${id} not listed: ${list.text}`);
    assert.equal(row.apiTokenMasked, obj.apiTokenMasked);
    assert.ok(!list.text.includes(secret), 'the account list contains the full token');

    const secret2 = `sk-other-secret-${unique('tok')}-qrstuvwxyz012345`;
    const upd = await mr.admin('PUT', `/api/accounts/${id}`, { siteId, apiToken: secret2 });
    assert.equal(upd.status, 200, upd.text);
    assert.ok(!upd.text.includes(secret2));
    const list2 = await mr.admin('GET', '/api/accounts');
    const row2 = listOf(list2.body, 'accounts').find((a) => a.id === id);
    assert.notEqual(row2.apiTokenMasked, obj.apiTokenMasked, 'the masked token did not change with the token');

    assert.equal((await mr.admin('DELETE', `/api/accounts/${id}`)).status, 200);
    const list3 = await mr.admin('GET', '/api/accounts');
    assert.ok(!listOf(list3.body, 'accounts').some((a) => a.id === id));
    assertAdminError(await mr.admin('DELETE', `/api/accounts/${id}`), 404);

    for (const text of seen) {
      assert.ok(!text.includes(secret) && !text.includes(secret2), `a full token in an answer: ${text}`);
    }
    assert.ok(!mr.stdout.includes(secret) && !mr.stderr.includes(secret), 'a full token in the logs');
  });

  test('accounts: validation errors', async () => {
    const site = await mr.admin('POST', '/api/sites', { name: unique('acct-v'), url: deadUrl(), platform: 'openai' });
    const siteId = assertCreated(site);
    assertAdminError(await mr.admin('POST', '/api/accounts', { siteId }), 400);
    assertAdminError(await mr.admin('POST', '/api/accounts', { apiToken: 'sk-x' }), 400);
    assertAdminError(await mr.admin('POST', '/api/accounts', { siteId: 'three', apiToken: 'sk-x' }), 400);
    const unknownSite = await mr.admin('POST', '/api/accounts', { siteId: 999999, apiToken: 'sk-x' });
    assert.ok([400, 404].includes(unknownSite.status), `unknown siteId → ${unknownSite.status}`);
    assertAdminError(unknownSite, unknownSite.status);
    assertAdminError(await mr.admin('POST', '/api/accounts', undefined, { rawBody: '{"siteId":' }), 400);
    assertAdminError(await mr.admin('PUT', '/api/accounts/999999', { siteId, apiToken: 'sk-x' }), 404);
    assertAdminError(await mr.admin('DELETE', '/api/accounts/999999'), 404);
    assertAdminError(await mr.admin('POST', '/api/models/check/999999'), 404);
  });

  test('models check: lists the relay\'s models and makes them routable; deleting the account removes them', async () => {
    const relay = await freshRelay();
    const site = await mr.admin('POST', '/api/sites', { name: unique('mc'), url: relay.url, platform: 'openai' });
    const siteId = assertCreated(site);
    const acct = await mr.admin('POST', '/api/accounts', { siteId, apiToken: relay.key });
    const id = assertCreated(acct);
    const check = await mr.admin('POST', `/api/models/check/${id}`);
    assert.equal(check.status, 200, check.text);
    assert.equal(check.body.success, true);
    assert.deepEqual(new Set(check.body.models.map((m) => (typeof m === 'string' ? m : m.id ?? m.name))), new Set(relay.models));
    assert.equal(check.body.count, relay.models.length);
    await waitFor(async () => (await routableModels(mr)).includes(relay.probeModel), { timeoutMs: 5000, what: 'models routable' });

    assert.equal((await mr.admin('DELETE', `/api/accounts/${id}`)).status, 200);
    await waitFor(async () => !(await routableModels(mr)).includes(relay.probeModel), {
      timeoutMs: 5000,
      what: 'models of the deleted account to leave /v1/models',
    });
    assert.equal((await mr.admin('DELETE', `/api/sites/${siteId}`)).status, 200);
  });

  test('models check with a key the relay refuses: a failure, and the key never shown', async () => {
    const relay = await freshRelay();
    const site = await mr.admin('POST', '/api/sites', { name: unique('badkey'), url: relay.url, platform: 'openai' });
    const siteId = assertCreated(site);
    const wrong = `sk-wrong-key-${unique('w')}-0123456789abcdef`;
    const acct = await mr.admin('POST', '/api/accounts', { siteId, apiToken: wrong });
    const id = assertCreated(acct);
    const check = await mr.admin('POST', `/api/models/check/${id}`);
    assert.ok(check.body && check.body.success === false, `check with a wrong key did not fail: ${check.status} ${check.text}`);
    assert.equal(typeof check.body.message, 'string');
    assert.ok(check.body.message.length > 0);
    assert.ok(!check.text.includes(wrong), `the key leaked in: ${check.text}`);
    assert.ok(!check.text.includes(relay.key), 'the relay key leaked');
    const models = await routableModels(mr);
    assert.ok(!models.includes(relay.probeModel), 'a failed check made models routable');
    assert.ok(!mr.stdout.includes(wrong) && !mr.stderr.includes(wrong), 'the key appears in the logs');
  });

  test('models check against an unreachable site fails cleanly', async () => {
    const site = await mr.admin('POST', '/api/sites', { name: unique('down'), url: deadUrl(), platform: 'openai' });
    const siteId = assertCreated(site);
    const id = assertCreated(await mr.admin('POST', '/api/accounts', { siteId, apiToken: 'sk-unreachable-0123456789' }));
    const check = await mr.admin('POST', `/api/models/check/${id}`);
    assert.ok(check.body && check.body.success === false, `${check.status} ${check.text}`);
    assert.ok(!check.text.includes('sk-unreachable-0123456789'));
  });

  test('deleting a site removes its accounts', async () => {
    const relay = await freshRelay();
    const siteId = assertCreated(await mr.admin('POST', '/api/sites', { name: unique('cascade'), url: relay.url, platform: 'openai' }));
    const id = assertCreated(await mr.admin('POST', '/api/accounts', { siteId, apiToken: relay.key }));
    assert.equal((await mr.admin('DELETE', `/api/sites/${siteId}`)).status, 200);
    const list = await mr.admin('GET', '/api/accounts');
    assert.ok(!listOf(list.body, 'accounts').some((a) => a.id === id), 'account survived its site');
  });
});
