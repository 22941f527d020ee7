// fixed-count.mjs — sends exactly N POST requests (bench/chat-body.json) one after the
// other over one keep-alive connection and fails unless every answer is 200. Used for
// the callgrind batches, where the request count must be exact (wrk runs for a time).
// Usage: node bench/fixed-count.mjs <url> <key> <n>
// BENCH_BODY picks another body file; BENCH_HEADERS (a JSON object) adds headers.
import fs from 'node:fs';
import http from 'node:http';

const [url, key, nText] = process.argv.slice(2);
const n = Number(nText);
if (!url || !key || !(n > 0)) {
  console.error('usage: node bench/fixed-count.mjs <url> <key> <n>');
  process.exit(2);
}
const body = fs.readFileSync(process.env.BENCH_BODY || new URL('./chat-body.json', import.meta.url)).toString().trim();
const extraHeaders = JSON.parse(process.env.BENCH_HEADERS || '{}');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const target = new URL(url);

function once() {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        host: target.hostname,
        port: target.port,
        path: target.pathname + target.search,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${key}`, ...extraHeaders },
      },
      (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

for (let i = 0; i < n; i++) await once();
agent.destroy();
console.log(`${n} requests ok`);
