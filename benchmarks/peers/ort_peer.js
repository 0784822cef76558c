#!/usr/bin/env node
// ONNX Runtime peer: KV-cached greedy generation of the vanilla model's step export
// (benchmarks/peers/export_peers.py -> step.onnx), one configuration.
//
// usage: node benchmarks/peers/ort_peer.js --model DIR/step.onnx --prompt P --gen G
//             [--batch B] [--threads T] [--ort DIR/node_modules/onnxruntime-node]
// Prints one JSON object (prefill/decode seconds and tokens/s, peak RSS).
'use strict';
const path = require('path');

function parse(argv) {
  const a = { batch: 1, threads: 1, seed: 1 };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (k === '--help' || k === '-h') {
      console.log('usage: node ort_peer.js --model step.onnx --prompt P --gen G [--batch B] [--threads T] [--ort DIR]');
      process.exit(0);
    }
    if (!k.startsWith('--') || v === undefined) {
      console.error(`ort_peer.js: bad argument ${k} (see --help)`);
      process.exit(2);
    }
    a[k.slice(2)] = ['model', 'ort'].includes(k.slice(2)) ? v : Number(v);
    i++;
  }
  for (const k of ['model', 'prompt', 'gen'])
    if (a[k] === undefined) { console.error(`ort_peer.js: --${k} is required`); process.exit(2); }
  return a;
}

async function main() {
  const a = parse(process.argv);
  const ortDir = a.ort || path.join(__dirname, '..', '..', '.deps', 'npm', 'node_modules', 'onnxruntime-node');
  const ort = require(ortDir);
  const opts = { intraOpNumThreads: a.threads, interOpNumThreads: 1, executionMode: 'sequential',
                 graphOptimizationLevel: 'all' };
  const sess = await ort.InferenceSession.create(a.model, opts);
  const pk = sess.inputNames.includes('past_k');
  if (!pk) throw new Error(`${a.model}: expected inputs tokens, past_k, past_v`);
  // Shapes from the model's first output when run; L, Hkv, hd from a tiny probe.
  const B = a.batch;
  let seed = a.seed >>> 0;
  const rnd = () => { seed = (seed * 1664525 + 1013904223) >>> 0; return seed; };
  const meta = JSON.parse(require('fs').readFileSync(path.join(path.dirname(a.model), 'config.json'), 'utf8'));
  const L = meta.config.layers, H = meta.config.n_kv_heads, hd = meta.config.head_dim, V = meta.config.vocab;
  const prompt = new BigInt64Array(B * a.prompt);
  for (let i = 0; i < prompt.length; i++) prompt[i] = BigInt(rnd() % V);
  const empty = new ort.Tensor('float32', new Float32Array(0), [L, B, 0, H, hd]);
  const argmaxLast = (logits, n) => {
    const out = new BigInt64Array(B);
    for (let b = 0; b < B; b++) {
      const off = (b * n + n - 1) * V;
      let best = 0, bv = -Infinity;
      for (let v = 0; v < V; v++) if (logits[off + v] > bv) { bv = logits[off + v]; best = v; }
      out[b] = BigInt(best);
    }
    return out;
  };
  const t0 = process.hrtime.bigint();
  let r = await sess.run({ tokens: new ort.Tensor('int64', prompt, [B, a.prompt]), past_k: empty, past_v: empty });
  const t1 = process.hrtime.bigint();
  let tok = argmaxLast(r.logits.data, a.prompt);
  for (let s = 0; s < a.gen - 1; s++) {
    r = await sess.run({ tokens: new ort.Tensor('int64', tok, [B, 1]), past_k: r.present_k, past_v: r.present_v });
    tok = argmaxLast(r.logits.data, 1);
  }
  const t2 = process.hrtime.bigint();
  const pre = Number(t1 - t0) / 1e9, dec = Number(t2 - t1) / 1e9;
  const ru = process.resourceUsage();
  console.log(JSON.stringify({
    peer: 'onnxruntime', ort: require(path.join(ortDir, 'package.json')).version, threads: a.threads,
    batch: B, prompt: a.prompt, gen: a.gen, prefill_s: pre, decode_s: dec,
    prefill_tokens: B * a.prompt, decode_tokens: B * (a.gen - 1), generated: B * a.gen,
    prefill_tps: B * a.prompt / pre, decode_tps: B * (a.gen - 1) / Math.max(dec, 1e-9),
    throughput_tps: B * a.gen / (pre + dec), peak_rss_bytes: ru.maxRSS * 1024,
  }));
}

main().catch((e) => { console.error(`ort_peer.js: ${e.message || e}`); process.exit(1); });
