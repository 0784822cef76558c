// Drives photon-serve with the official `openai` npm client (docs/runtime.md, "The server"):
// starts the server on a free loopback port for each artifact given, runs the client checks
// (completions and chat, streaming and not, stop strings, seeds, n, usage, errors), a bounded
// load test (64 concurrent clients, 512 requests, some cancelled mid-stream: every other one
// gets a complete, well-formed answer; the cache accounting returns to zero; the server's RSS
// stays flat), the over-capacity 429, and graceful shutdown on SIGTERM (503 while draining,
// exit status 0). Prints one PASS/FAIL line per check and "N passed, N failed"; exits 1 on any
// failure.
//
// usage: node serve_driver.cjs PHOTON_SERVE NPM_DIR WORKDIR ARTIFACT.photon [ARTIFACT.photon...]
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const assert = require('assert/strict');

const [serveBin, npmDir, workDir, ...artifacts] = process.argv.slice(2);
if (!serveBin || !npmDir || !workDir || artifacts.length === 0) {
  console.error('usage: node serve_driver.cjs PHOTON_SERVE NPM_DIR WORKDIR ARTIFACT.photon...');
  process.exit(2);
}
const openaiMod = require(path.join(npmDir, 'node_modules', 'openai'));
const OpenAI = openaiMod.OpenAI || openaiMod.default || openaiMod;

let passed = 0, failed = 0;
async function check(name, fn) {
  const t0 = Date.now();
  try {
    await within(180000, name, Promise.resolve().then(fn));
    ++passed;
    console.log(`PASS ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    ++failed;
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Every wait is bounded: a request that does not end in time fails with a message.
function within(ms, what, promise) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}
const servers = new Set(); // killed if the driver has to give up

// Starts a server; resolves once it listens (the port file appears) or rejects with its log.
async function startServer(artifact, extra = []) {
  const portFile = path.join(workDir, `port-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const logFile = portFile + '.log';
  const log = fs.openSync(logFile, 'w');
  const child = spawn(serveBin, [artifact, '--port', '0', '--port-file', portFile, '--quiet', ...extra],
                      { stdio: ['ignore', log, log] });
  servers.add(child);
  child.on('exit', () => servers.delete(child));
  let exited = null;
  const exitPromise = new Promise((resolve) => child.on('exit', (code, sig) => { exited = { code, sig }; resolve(exited); }));
  for (let i = 0; i < 600 && !fs.existsSync(portFile); ++i) {
    if (exited) break;
    await sleep(50);
  }
  if (!fs.existsSync(portFile)) {
    child.kill('SIGKILL');
    throw new Error(`photon-serve did not start: ${fs.readFileSync(logFile, 'utf8')}`);
  }
  const port = parseInt(fs.readFileSync(portFile, 'utf8'), 10);
  const base = `http://127.0.0.1:${port}`;
  const models = await (await fetch(`${base}/v1/models`)).json();
  return {
    child, base, exitPromise, logFile, model: models.data[0].id,
    client: new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60000 }),
    async stop() {
      if (!exited) child.kill('SIGTERM');
      const r = await Promise.race([exitPromise, sleep(20000).then(() => null)]);
      if (!r) { child.kill('SIGKILL'); throw new Error('photon-serve did not exit within 20 s of SIGTERM'); }
      return r;
    },
  };
}

async function metrics(base) {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const [k, v] = line.split(' ');
    m[k] = Number(v);
  }
  return m;
}

function rssKiB(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(s)[1]);
}

async function streamText(stream, chat) {
  let text = '', finish = null, chunks = 0, usage = null, photonFinish = null;
  for await (const ev of stream) {
    if (ev.usage) usage = ev.usage;
    for (const c of ev.choices) {
      ++chunks;
      text += chat ? (c.delta && c.delta.content) || '' : c.text || '';
      if (c.finish_reason) { finish = c.finish_reason; photonFinish = c.photon_finish; }
    }
  }
  return { text, finish, chunks, usage, photonFinish };
}

async function clientChecks(s, label) {
  const { client, model, base } = s;
  await check(`${label}: GET /v1/models lists the model`, async () => {
    const list = await client.models.list();
    const ids = list.data.map((m) => m.id);
    assert.deepEqual(ids, [model]);
  });
  await check(`${label}: GET /health`, async () => {
    const r = await fetch(`${base}/health`);
    assert.equal(r.status, 200);
    assert.equal((await r.json()).status, 'ok');
  });
  const prompt = 'The little cat ';
  let greedy;
  await check(`${label}: completion, greedy, usage counts`, async () => {
    const r = await client.completions.create({ model, prompt, max_tokens: 40, temperature: 0 });
    assert.equal(r.object, 'text_completion');
    assert.equal(r.choices.length, 1);
    assert.equal(typeof r.choices[0].text, 'string');
    assert.ok(r.choices[0].text.length > 0, 'empty text');
    assert.ok(['length', 'stop'].includes(r.choices[0].finish_reason), r.choices[0].finish_reason);
    assert.equal(r.usage.prompt_tokens, Buffer.byteLength(prompt)); // byte tokenizer
    if (r.choices[0].finish_reason === 'length') assert.equal(r.usage.completion_tokens, 40);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
    greedy = r.choices[0].text;
    const again = await client.completions.create({ model, prompt, max_tokens: 40, temperature: 0 });
    assert.equal(again.choices[0].text, greedy, 'greedy is deterministic');
  });
  await check(`${label}: streamed completion equals the non-streamed one`, async () => {
    const st = await client.completions.create({ model, prompt, max_tokens: 40, temperature: 0, stream: true,
                                                 stream_options: { include_usage: true } });
    const got = await streamText(st, false);
    assert.equal(got.text, greedy);
    assert.ok(got.chunks >= 2, `${got.chunks} chunks`);
    assert.ok(['length', 'stop'].includes(got.finish));
    assert.ok(got.usage && got.usage.completion_tokens > 0, 'usage in the last event');
  });
  await check(`${label}: the same seed gives the same text, another seed another`, async () => {
    const ask = (seed) => client.completions.create({ model, prompt, max_tokens: 48, temperature: 1.0, top_p: 0.95, seed });
    const [a, b, c] = await Promise.all([ask(11), ask(11), ask(12)]);
    assert.equal(a.choices[0].text, b.choices[0].text);
    assert.notEqual(a.choices[0].text, c.choices[0].text);
    const st = await client.completions.create({ model, prompt, max_tokens: 48, temperature: 1.0, top_p: 0.95, seed: 11, stream: true });
    assert.equal((await streamText(st, false)).text, a.choices[0].text, 'streamed with the same seed');
  });
  await check(`${label}: stop string ends the text before its first match`, async () => {
    const full = (await client.completions.create({ model, prompt, max_tokens: 64, temperature: 0 })).choices[0].text;
    // Two printable ASCII characters from the middle of the greedy text.
    let at = -1;
    for (let i = 8; i + 2 <= full.length; ++i)
      if (/^[\x20-\x7e]{2}$/.test(full.slice(i, i + 2))) { at = i; break; }
    assert.ok(at >= 0, `no ASCII pair in ${JSON.stringify(full)}`);
    const stop = full.slice(at, at + 2);
    const want = full.slice(0, full.indexOf(stop));
    const r = await client.completions.create({ model, prompt, max_tokens: 64, temperature: 0, stop: [stop, '\u0001never'] });
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.choices[0].photon_finish, 'stop_string');
    assert.equal(r.choices[0].text, want);
    const st = await client.completions.create({ model, prompt, max_tokens: 64, temperature: 0, stop, stream: true });
    const got = await streamText(st, false);
    assert.equal(got.text, want, 'streamed text never shows the stop string');
    assert.equal(got.finish, 'stop');
  });
  await check(`${label}: n = 3 samples, each with its own seed`, async () => {
    const r = await client.completions.create({ model, prompt, max_tokens: 24, temperature: 1.0, seed: 5, n: 3 });
    assert.equal(r.choices.length, 3);
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
    const one = await client.completions.create({ model, prompt, max_tokens: 24, temperature: 1.0, seed: 6 });
    assert.equal(r.choices[1].text, one.choices[0].text, 'sample i uses seed + i');
    assert.equal(r.usage.completion_tokens, 3 * 24);
  });
  await check(`${label}: chat completion, streaming and not`, async () => {
    const messages = [{ role: 'system', content: 'You tell stories.' }, { role: 'user', content: 'Once upon a time' }];
    const r = await client.chat.completions.create({ model, messages, max_tokens: 32, temperature: 0.7, seed: 9 });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(typeof r.choices[0].message.content, 'string');
    const tmpl = 'system: You tell stories.\nuser: Once upon a time\nassistant:';
    assert.equal(r.usage.prompt_tokens, Buffer.byteLength(tmpl), 'the documented chat template');
    const st = await client.chat.completions.create({ model, messages, max_tokens: 32, temperature: 0.7, seed: 9, stream: true });
    const got = await streamText(st, true);
    assert.equal(got.text, r.choices[0].message.content);
    assert.equal(got.finish, r.choices[0].finish_reason);
  });
  await check(`${label}: bad requests get 400 with a message naming the field`, async () => {
    const bad = async (body, param, status = 400) => {
      try {
        await client.completions.create({ model, prompt, ...body });
      } catch (e) {
        assert.equal(e.status, status, `${JSON.stringify(body)}: ${e.message}`);
        assert.ok(e.error && typeof e.error.message === 'string' && e.error.message.length > 10, 'a message');
        if (param) assert.ok(e.message.includes(param), `${e.message} names ${param}`);
        return e;
      }
      throw new Error(`${JSON.stringify(body)} was accepted`);
    };
    await bad({ max_tokens: -1 }, 'max_tokens');
    await bad({ max_tokens: 10 ** 9 }, 'max_tokens');
    await bad({ temperature: 7 }, 'temperature');
    await bad({ top_p: 'x' }, 'top_p');
    await bad({ n: 100 }, 'n');
    await bad({ stop: [1, 2] }, 'stop');
    await bad({ prompt: [1, 2, 100000] }, 'prompt');
    await bad({ prompt: 42 }, 'prompt');
    const e = await bad({ model: 'no-such-model' }, 'no-such-model', 404);
    assert.equal(e.code, 'model_not_found');
    await assert.rejects(client.chat.completions.create({ model, messages: [] }), (err) => err.status === 400 && /messages/.test(err.message));
    await assert.rejects(client.chat.completions.create({ model, messages: [{ role: 'wizard', content: 'x' }] }),
                         (err) => err.status === 400 && /role/.test(err.message));
    const raw = await fetch(`${base}/v1/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"prompt": "x",' });
    assert.equal(raw.status, 400);
    const j = await raw.json();
    assert.equal(j.error.type, 'invalid_request_error');
    assert.match(j.error.message, /not valid JSON/);
    const nf = await fetch(`${base}/v2/nothing`);
    assert.equal(nf.status, 404);
    assert.ok((await nf.json()).error.message.includes('/v2/nothing'));
  });
}

async function loadTest(s) {
  const { client, model, base, child } = s;
  const total = 512, workers = 64;
  let next = 0, ok = 0, aborted = 0, rssAfterWarmup = 0;
  const problems = [];
  const one = async (i) => {
    const max_tokens = 1 + (i * 7919) % 48;
    const stream = i % 2 === 0, chat = i % 3 === 0, abort = i % 29 === 5;
    const common = { model, max_tokens, temperature: (i % 4) * 0.3, seed: i };
    try {
      if (abort) {
        // A client that reads two events and goes away (its samples are cancelled).
        const ac = new AbortController();
        const r = await fetch(`${base}/v1/completions`, {
          method: 'POST', signal: ac.signal, headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ ...common, prompt: `req ${i}`, max_tokens: 400, stream: true }) });
        const reader = r.body.getReader();
        await within(60000, `aborted request ${i}`, (async () => { await reader.read(); await reader.read(); })());
        ac.abort();
        await reader.cancel().catch(() => {});
        ++aborted;
        return;
      }
      if (chat) {
        const messages = [{ role: 'user', content: `request ${i}` }];
        if (stream) {
          const got = await streamText(await client.chat.completions.create({ ...common, messages, stream: true }), true);
          if (!['length', 'stop'].includes(got.finish)) throw new Error(`finish ${got.finish}`);
        } else {
          const r = await client.chat.completions.create({ ...common, messages });
          if (typeof r.choices[0].message.content !== 'string') throw new Error('no content');
          if (!['length', 'stop'].includes(r.choices[0].finish_reason)) throw new Error(`finish ${r.choices[0].finish_reason}`);
          if (r.choices[0].finish_reason === 'length' && r.usage.completion_tokens !== max_tokens) throw new Error('usage');
        }
      } else {
        const prompt = `request number ${i}: `;
        if (stream) {
          const got = await streamText(await client.completions.create({ ...common, prompt, stream: true, stream_options: { include_usage: true } }), false);
          if (!['length', 'stop'].includes(got.finish)) throw new Error(`finish ${got.finish}`);
          if (!got.usage || got.usage.completion_tokens > max_tokens) throw new Error('usage');
        } else {
          const r = await client.completions.create({ ...common, prompt });
          if (typeof r.choices[0].text !== 'string') throw new Error('no text');
          if (r.choices[0].finish_reason === 'length' && r.usage.completion_tokens !== max_tokens) throw new Error('usage');
        }
      }
      ++ok;
    } catch (e) {
      problems.push(`request ${i}: ${e.message}`);
    }
  };
  const t0 = Date.now();
  await Promise.all(Array.from({ length: workers }, async () => {
    while (next < total) {
      const i = next++;
      await within(120000, `request ${i}`, one(i)).catch((e) => problems.push(e.message));
      if (i === 2 * workers) rssAfterWarmup = rssKiB(child.pid);
    }
  }));
  const seconds = (Date.now() - t0) / 1000;
  await check(`load: ${total} requests from ${workers} concurrent clients, each answered completely`, async () => {
    assert.deepEqual(problems.slice(0, 5), []);
    assert.equal(ok + aborted, total);
    console.log(`      ${ok} answered, ${aborted} cancelled by their client, in ${seconds.toFixed(1)} s`);
  });
  await check('load: cache accounting returns to zero, nothing left in flight', async () => {
    let m;
    for (let i = 0; i < 100; ++i) { // the last cancellations reach the engine on its next step
      m = await metrics(base);
      if (m['photon_active_sequences'] === 0 && m['photon_samples_in_flight'] === 0) break;
      await sleep(20);
    }
    const levels = Object.keys(m).filter((k) => k.startsWith('photon_cache_bytes_in_use{'));
    assert.ok(levels.length >= 1);
    for (const k of levels) assert.equal(m[k], 0, k);
    assert.equal(m['photon_cache_reserved_bytes'], 0);
    assert.equal(m['photon_active_sequences'], 0);
    assert.equal(m['photon_queue_length'], 0);
    assert.equal(m['photon_samples_in_flight'], 0);
    assert.ok(m['photon_engine_requests_cancelled_total'] >= 1, 'the aborted streams were cancelled');
    assert.ok(m['photon_generated_tokens_total'] > 0);
  });
  await check('load: RSS is flat across the run', async () => {
    const end = rssKiB(child.pid);
    console.log(`      RSS after warm-up ${(rssAfterWarmup / 1024).toFixed(1)} MiB, at the end ${(end / 1024).toFixed(1)} MiB`);
    assert.ok(rssAfterWarmup > 0);
    assert.ok(end - rssAfterWarmup <= 16 * 1024, `grew by ${((end - rssAfterWarmup) / 1024).toFixed(1)} MiB`);
  });
}

// The whole run is bounded too (lit would otherwise wait for its own timeout).
setTimeout(() => {
  console.log('FAIL driver: still running after 600 s; stopping the servers');
  for (const c of servers) c.kill('SIGKILL');
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
}, 600000).unref();

(async () => {
  fs.mkdirSync(workDir, { recursive: true });
  for (const [k, artifact] of artifacts.entries()) {
    const label = path.basename(artifact);
    let s;
    try {
      s = await startServer(artifact, ['--memory-budget', '64M']);
    } catch (e) {
      await check(`${label}: the server starts`, async () => { throw e; });
      continue;
    }
    await clientChecks(s, label);
    if (k === 0) await loadTest(s);
    await check(`${label}: SIGTERM stops the server with status 0`, async () => {
      const r = await s.stop();
      assert.equal(r.code, 0, `exit ${JSON.stringify(r)}: ${fs.readFileSync(s.logFile, 'utf8')}`);
    });
  }
  // Over capacity and shutdown on a server of its own.
  const artifact = artifacts[0];
  await check('over capacity: requests beyond --max-queue get 429', async () => {
    const s = await startServer(artifact, ['--max-queue', '2']);
    try {
      const reqs = Array.from({ length: 8 }, (_, i) =>
        s.client.completions.create({ model: s.model, prompt: `x${i}`, max_tokens: 300 }).then(() => 200, (e) => e.status));
      const statuses = await Promise.all(reqs);
      assert.ok(statuses.includes(429), JSON.stringify(statuses));
      assert.ok(statuses.includes(200), JSON.stringify(statuses));
      assert.ok(statuses.every((x) => x === 200 || x === 429), JSON.stringify(statuses));
    } finally {
      await s.stop();
    }
  });
  await check('SIGTERM: running streams end, new requests get 503, exit status 0', async () => {
    const s = await startServer(artifact, ['--drain-seconds', '1', '--max-tokens-limit', '1000000']);
    try {
    const st = await s.client.completions.create({ model: s.model, prompt: 'a long one', max_tokens: 1000000, stream: true, temperature: 1 });
    const it = st[Symbol.asyncIterator]();
    await it.next(); // it runs
    s.child.kill('SIGTERM');
    await sleep(100);
    const r = await fetch(`${s.base}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'x', max_tokens: 2 }) });
    assert.equal(r.status, 503);
    assert.equal((await r.json()).error.code, 'shutting_down');
    assert.equal((await fetch(`${s.base}/health`)).status, 503);
    let finish = null;
    for (let x = await it.next(); !x.done; x = await it.next())
      for (const c of x.value.choices) if (c.finish_reason) finish = c.finish_reason;
    assert.equal(finish, 'cancelled', 'the unfinished stream is told it was cancelled');
    const ex = await s.stop();
    assert.equal(ex.code, 0);
    } finally {
      if (s.child.exitCode === null) s.child.kill('SIGKILL');
    }
  });
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})().catch((e) => {
  console.log(`FAIL driver: ${e.stack || e}`);
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
});
