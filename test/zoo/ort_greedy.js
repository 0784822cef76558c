// Greedy generation with onnxruntime-node by re-running the whole (forward) model:
//   node ort_greedy.js MODULE_DIR model.onnx spec.json OUT.json
// spec.json: {"input": "<token input name>", "output": "<logits output name>",
//             "prompts": [[ids...], ...] (one batch: equal lengths), "steps": N}
// Writes {"tokens": [[N new ids per prompt]], "margins": [[top1 - top2 per step]],
//         "logits": [[[V floats of every step's last row]]]} (logits[t, T-1] predicts t + 1).
const path = require('path');
const fs = require('fs');
const [moduleDir, modelPath, specPath, outPath] = process.argv.slice(2);
if (!outPath) {
  console.error('usage: node ort_greedy.js MODULE_DIR model.onnx spec.json OUT.json');
  process.exit(2);
}
const ort = require(path.join(moduleDir, 'onnxruntime-node'));

(async () => {
  const spec = JSON.parse(fs.readFileSync(specPath, 'utf8'));
  const session = await ort.InferenceSession.create(modelPath, {intraOpNumThreads: 1, interOpNumThreads: 1});
  const seqs = spec.prompts.map((p) => p.slice());
  const B = seqs.length;
  const gen = seqs.map(() => []), margins = seqs.map(() => []), rows = seqs.map(() => []);
  for (let step = 0; step < spec.steps; ++step) {
    const T = seqs[0].length;
    if (!seqs.every((s) => s.length === T)) throw new Error('prompts of one batch must have equal lengths');
    const ids = new BigInt64Array(B * T);
    seqs.forEach((s, b) => s.forEach((t, i) => { ids[b * T + i] = BigInt(t); }));
    const out = await session.run({[spec.input]: new ort.Tensor('int64', ids, [B, T])});
    const lg = out[spec.output];
    const V = lg.dims[2];
    for (let b = 0; b < B; ++b) {
      const row = lg.data.subarray((b * T + T - 1) * V, (b * T + T) * V);
      let best = 0, second = -1;
      for (let v = 1; v < V; ++v) {
        if (row[v] > row[best]) { second = best; best = v; } else if (second < 0 || row[v] > row[second]) second = v;
      }
      gen[b].push(best);
      margins[b].push(row[best] - row[second]);
      rows[b].push(Array.from(row));
      seqs[b].push(best);
    }
  }
  fs.writeFileSync(outPath, JSON.stringify({tokens: gen, margins: margins, logits: rows}));
})().catch((e) => { console.error('ort_greedy: ' + (e && e.message ? e.message : e)); process.exit(1); });
