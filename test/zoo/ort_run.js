// Run an ONNX model with onnxruntime-node, any number of named inputs:
//   node ort_run.js MODULE_DIR model.onnx inputs.json OUT_DIR
// inputs.json: {"<input name>": {"dtype": "int64" | "float32", "dims": [...], "file": "<raw
// little-endian data, C order>"}, ...} (a dimension may be 0: an empty past).
// Writes OUT_DIR/<output name>.bin (float32 little-endian; a float16 output is widened) for
// every output and
// OUT_DIR/outputs.json ({name: {"dims": [...], "type": "..."}}).
const path = require('path');
const fs = require('fs');
const [moduleDir, modelPath, inputsPath, outDir] = process.argv.slice(2);
if (!outDir) {
  console.error('usage: node ort_run.js MODULE_DIR model.onnx inputs.json OUT_DIR');
  process.exit(2);
}
const ort = require(path.join(moduleDir, 'onnxruntime-node'));

// IEEE binary16 bits (onnxruntime-node returns float16 tensors as Uint16Array) to a number.
function halfToFloat(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * Math.pow(2, -24);
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * Math.pow(2, e - 15);
}

function aligned(buf) {
  // readFileSync's Buffer may not start on an 8-byte boundary: copy into a fresh ArrayBuffer.
  const ab = new ArrayBuffer(buf.length);
  new Uint8Array(ab).set(buf);
  return ab;
}

(async () => {
  const spec = JSON.parse(fs.readFileSync(inputsPath, 'utf8'));
  const session = await ort.InferenceSession.create(modelPath, {intraOpNumThreads: 1, interOpNumThreads: 1});
  const feeds = {};
  for (const [name, s] of Object.entries(spec)) {
    const ab = aligned(fs.readFileSync(s.file));
    let data;
    if (s.dtype === 'int64') data = new BigInt64Array(ab);
    else if (s.dtype === 'float32') data = new Float32Array(ab);
    else throw new Error('unsupported dtype ' + s.dtype + ' for input ' + name);
    feeds[name] = new ort.Tensor(s.dtype, data, s.dims);
  }
  const out = await session.run(feeds);
  const meta = {};
  for (const name of session.outputNames) {
    const v = out[name];
    let data = v.data;
    if (v.type === 'float16') data = Float32Array.from(v.data, halfToFloat); // a half export's output
    else if (v.type !== 'float32') throw new Error('output ' + name + ' has type ' + v.type);
    fs.writeFileSync(path.join(outDir, name + '.bin'), Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    meta[name] = {dims: v.dims, type: v.type};
  }
  fs.writeFileSync(path.join(outDir, 'outputs.json'), JSON.stringify(meta));
})().catch((e) => { console.error('ort_run: ' + (e && e.message ? e.message : e)); process.exit(1); });
