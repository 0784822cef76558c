// Run an ONNX model with onnxruntime-node: node ort_run.js MODULE_DIR model.onnx tokens.json OUT_DIR
// tokens.json: {"dims": [B, T], "data": [...]} (int64 input `tokens`). Writes OUT_DIR/<output>.bin
// (float32 little-endian) and OUT_DIR/outputs.json ({name: dims}).
const path = require('path');
const fs = require('fs');
const [moduleDir, modelPath, tokensPath, outDir] = process.argv.slice(2);
if (!outDir) {
  console.error('usage: node ort_run.js MODULE_DIR model.onnx tokens.json OUT_DIR');
  process.exit(2);
}
const ort = require(path.join(moduleDir, 'onnxruntime-node'));
(async () => {
  const t = JSON.parse(fs.readFileSync(tokensPath, 'utf8'));
  const session = await ort.InferenceSession.create(modelPath, {intraOpNumThreads: 1, interOpNumThreads: 1});
  const input = new ort.Tensor('int64', BigInt64Array.from(t.data.map(BigInt)), t.dims);
  const out = await session.run({tokens: input});
  const meta = {};
  for (const name of session.outputNames) {
    const v = out[name];
    fs.writeFileSync(path.join(outDir, name + '.bin'), Buffer.from(v.data.buffer, v.data.byteOffset, v.data.byteLength));
    meta[name] = v.dims;
  }
  fs.writeFileSync(path.join(outDir, 'outputs.json'), JSON.stringify(meta));
})().catch((e) => { console.error('ort_run: ' + (e && e.message ? e.message : e)); process.exit(1); });
