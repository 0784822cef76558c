"""ONNX export (opset 17) following docs/onnx-convention.md, and the convention checker.

torch 1.13 quirks handled here (verified against its exporter):
- its CSE pass pools equal constants across module scopes, which makes one function consume a
  constant produced inside another; it is disabled during the function export;
- it deduplicates equal initializers (e.g. norm weights that are all ones); disabled so every
  weight keeps its own name;
- `output_names` land on values inside the functions; the top-level outputs are renamed here;
- function formal inputs/outputs get the convention's names (x, table, w, ...) here;
- instances of one module class whose bodies differ structurally (e.g. two EncoderStacks with
  different depths) become functions `EncoderStack`, `EncoderStack.1`, ...; bodies that differ
  only in constants share one function and torch adds `inferred::*` tensor attributes.
"""
import contextlib
import io
import json
import re

import onnx
import torch

from .model import FUNCTION_MODULES, PhotonModel, VanillaModel
from .ops import WEIGHTS_PER_LAYER

OPSET = 17
CONVENTION = "1"

STACK_ATTRS = ["n_layers", "n_heads", "n_kv_heads", "head_dim", "rope_theta", "eps"]


def stack_input_names(n_layers):
    return [f"{w}.{i}" for i in range(n_layers) for w in WEIGHTS_PER_LAYER] + ["final_norm"]


# function name -> (activation inputs, weight inputs (callable of attrs for stacks), outputs, attrs)
SIGNATURES = {
    "TokenEmbedding": (["tokens"], ["table"], ["y"], []),
    "Chunk": (["x"], [], ["y"], ["size"]),
    "ChunkCompress": (["x"], ["norm", "w", "b"], ["y"], ["size", "eps"]),
    "EncoderStack": (["x"], "stack", ["y"], STACK_ATTRS),
    "Shift": (["x"], ["start"], ["y"], []),
    "LatentDecoder": (["prev"], ["conv_w", "conv_b", "stack"], ["y"], ["chunk", "prefix"] + STACK_ATTRS),
    "TokenDecoder": (["prev", "tokens"], ["emb", "conv_w", "conv_b", "stack"], ["y"], ["chunk", "prefix"] + STACK_ATTRS),
    "LMHead": (["x"], ["w"], ["y"], []),
}


def base_name(fn_name):
    """`EncoderStack.1` -> `EncoderStack`"""
    return re.sub(r"\.\d+$", "", fn_name)


def formal_inputs(fn, attrs):
    acts, ws, _, _ = SIGNATURES[fn]
    names = list(acts)
    for w in (["stack"] if ws == "stack" else ws):
        names += stack_input_names(attrs["n_layers"]) if w == "stack" else [w]
    return names


@contextlib.contextmanager
def _torch_quirks():
    C = torch._C
    saved = (C._jit_pass_cse, C._jit_pass_onnx_deduplicate_initializers)
    C._jit_pass_cse = lambda graph: False
    C._jit_pass_onnx_deduplicate_initializers = lambda graph, params, training: params
    try:
        yield
    finally:
        C._jit_pass_cse, C._jit_pass_onnx_deduplicate_initializers = saved


def _rename_values(nodes, mapping):
    for n in nodes:
        for i, v in enumerate(n.input):
            if v in mapping:
                n.input[i] = mapping[v]
        for i, v in enumerate(n.output):
            if v in mapping:
                n.output[i] = mapping[v]
        for a in n.attribute:   # subgraphs (none expected, but be safe)
            if a.type == onnx.AttributeProto.GRAPH:
                _rename_values(a.g.node, mapping)


def _attr_values(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _canonicalize_functions(mp, cfg):
    """Give every function its documented formal names and input order.

    torch orders a function's inputs as: activations, then weights, each in order of first use
    in the traced body. Here each call site's actual inputs are matched against the convention
    (expected_calls: which initializer feeds which formal weight), and the function's inputs and
    every call of it are permuted into the documented order."""
    g = mp.graph
    calls = expected_calls(cfg)
    if len(calls) != len(g.node):
        raise RuntimeError(f"export produced {len(g.node)} top-level nodes, expected {len(calls)}: "
                           f"{[n.op_type for n in g.node]}")
    funcs = {f.name: f for f in mp.functions}
    perms = {}
    for n, (fn, attrs, wnames) in zip(g.node, calls):
        if base_name(n.op_type) != fn or n.op_type not in funcs:
            raise RuntimeError(f"top-level node {n.op_type}: expected a call of {fn}")
        formal = formal_inputs(fn, _attr_values(n))
        acts = SIGNATURES[fn][0]
        nact = len(acts)
        role = []
        for v in n.input:
            if v in wnames:
                role.append(formal[nact + wnames.index(v)])
            elif v == "tokens" and "tokens" in acts:
                role.append("tokens")
            else:
                others = [a for a in acts if a != "tokens"]
                if len(others) != 1:
                    raise RuntimeError(f"{n.op_type}: cannot place input {v}")
                role.append(others[0])
        if sorted(role) != sorted(formal):
            raise RuntimeError(f"{n.op_type}: inputs {list(n.input)} do not match {formal}")
        perm = [role.index(r) for r in formal]
        if perms.setdefault(n.op_type, perm) != perm:
            raise RuntimeError(f"{n.op_type}: call sites disagree on the input order")
        new_inputs = [n.input[i] for i in perm]
        del n.input[:]
        n.input.extend(new_inputs)
    for f in mp.functions:
        fn = base_name(f.name)
        if f.name not in perms:
            raise RuntimeError(f"function {f.name} is never called")
        perm = perms[f.name]
        formal = [None] * len(perm)
        m = {}
        want_in = None
        for n, (cfn, attrs, _) in zip(g.node, calls):
            if n.op_type == f.name:
                want_in = formal_inputs(fn, _attr_values(n))
                break
        outs = SIGNATURES[fn][2]
        used = set(want_in) | set(outs)
        for node in f.node:       # move internal values that would clash with a formal name
            for v in node.output:
                if v in used and v not in f.output:
                    m[v] = "_" + v
        old_inputs = list(f.input)
        for k, i in enumerate(perm):
            m[old_inputs[i]] = want_in[k]
        for old, new in zip(f.output, outs):
            m[old] = new
        _rename_values(f.node, m)
        del f.input[:]
        f.input.extend(want_in)
        new_out = [m.get(v, v) for v in f.output]
        del f.output[:]
        f.output.extend(new_out)


def _canonical_local_names(nodes, keep, prefix):
    """Rename every value not in `keep` to <prefix><k> in order of definition and every node to
    <op>_<k>: torch's numbering depends on the (hash-seed dependent) function extraction order."""
    m = {}
    for n in nodes:
        for v in n.output:
            if v and v not in keep and v not in m:
                m[v] = f"{prefix}{len(m)}"
    _rename_values(nodes, m)
    for k, n in enumerate(nodes):
        n.name = f"{n.op_type}_{k}"


def _postprocess(mp, model, output_names, functions):
    g = mp.graph
    # top-level output names
    mapping = {}
    for o, want in zip(g.output, output_names):
        if o.name != want:
            mapping[o.name] = want
    # a value named like a wanted output but internal to the top graph must not clash
    _rename_values(g.node, mapping)
    for o in g.output:
        o.name = mapping.get(o.name, o.name)
    if functions:
        _canonicalize_functions(mp, model.cfg)
        # deterministic bytes: torch emits functions in set order (hash-seed dependent)
        fs = sorted(mp.functions, key=lambda f: f.name)
        for f in fs:
            attrs = sorted(f.attribute)
            del f.attribute[:]
            f.attribute.extend(attrs)
        for f in fs:
            _canonical_local_names(f.node, set(f.input) | set(f.output), prefix="t")
        copies = [onnx.FunctionProto.FromString(f.SerializeToString()) for f in fs]
        del mp.functions[:]
        mp.functions.extend(copies)
        g = mp.graph
        m = {}
        for n in g.node:
            for i, v in enumerate(n.output):
                if v not in output_names:
                    m[v] = f"{n.name or n.op_type}_out{i}"
        _rename_values(g.node, m)
        for n in mp.graph.node:
            attrs = sorted(n.attribute, key=lambda a: a.name)
            copies = [onnx.AttributeProto.FromString(a.SerializeToString()) for a in attrs]
            del n.attribute[:]
            n.attribute.extend(copies)
    # output shapes with stable symbolic names (torch numbers them with a global counter)
    cfg = model.cfg
    for o in g.output:
        dims = o.type.tensor_type.shape.dim
        if o.name == "logits":
            want = ["B", "T", cfg.vocab]
        else:
            want = ["B", "M1", cfg.width]
        del dims[:]
        for w in want:
            dd = dims.add()
            if isinstance(w, str):
                dd.dim_param = w
            else:
                dd.dim_value = w
    del g.value_info[:]
    meta = {"photon.family": model.cfg.family,
            "photon.config": json.dumps(model.cfg.onnx_config(), sort_keys=True),
            "photon.convention": CONVENTION}
    del mp.metadata_props[:]
    for k, v in meta.items():
        p = mp.metadata_props.add()
        p.key, p.value = k, v
    mp.producer_name = "photon-reference"
    return mp


def export(model, path, functions=True, example_tokens=None):
    """Export `model` to `path` (model.onnx with functions, or the plain graph)."""
    cfg = model.cfg
    model.eval()
    if example_tokens is None:
        T = 2 * cfg.meta if cfg.family != "vanilla" else 8
        example_tokens = torch.arange(2 * T, dtype=torch.int64).reshape(2, T) % cfg.vocab
    names = model.output_names()
    buf = io.BytesIO()
    kwargs = dict(opset_version=OPSET, input_names=["tokens"], output_names=names,
                  dynamic_axes={"tokens": {0: "B", 1: "T"}, **{n: {0: "B"} for n in names}},
                  do_constant_folding=False)
    with torch.no_grad():
        if functions:
            with _torch_quirks():
                torch.onnx.export(model, (example_tokens,), buf,
                                  export_modules_as_functions=set(FUNCTION_MODULES), **kwargs)
        else:
            torch.onnx.export(model, (example_tokens,), buf, **kwargs)
    mp = onnx.load_from_string(buf.getvalue())
    mp = _postprocess(mp, model, names, functions)
    onnx.checker.check_model(mp)
    onnx.save(mp, path)
    return mp


# ---------------------------------------------------------------------------------------------
# convention checker
# ---------------------------------------------------------------------------------------------
class ConventionError(Exception):
    pass


def expected_calls(cfg):
    """The top-level call sequence the convention prescribes: [(function, attrs, weight names)]."""
    def stack(prefix, n):
        return [f"{prefix}.{i}.{w}" for i in range(n) for w in WEIGHTS_PER_LAYER] + [f"{prefix}.final_norm"]

    def sattrs(n):
        return {"n_layers": n, "n_heads": cfg.n_heads, "n_kv_heads": cfg.n_kv_heads,
                "head_dim": cfg.head_dim, "rope_theta": cfg.rope_theta, "eps": cfg.norm_eps}
    if cfg.family == "vanilla":
        return [("TokenEmbedding", {}, ["emb"]), ("EncoderStack", sattrs(cfg.layers), stack("stack", cfg.layers)),
                ("LMHead", {}, ["lm_head"])]
    L, C = cfg.levels, cfg.chunk_sizes
    calls = [("TokenEmbedding", {}, ["emb_enc"]), ("Chunk", {"size": C[0]}, [])]
    for l in range(1, L + 1):
        if l >= 2:
            calls.append(("ChunkCompress", {"size": C[l - 1], "eps": cfg.norm_eps},
                          [f"enc{l}.compress.norm", f"enc{l}.compress.w", f"enc{l}.compress.b"]))
        calls.append(("EncoderStack", sattrs(cfg.enc_layers[l - 1]), stack(f"enc{l}", cfg.enc_layers[l - 1])))
    for l in range(L, 1, -1):
        calls.append(("Shift", {}, [f"dec{l}.start"]))
        calls.append(("LatentDecoder", dict(chunk=C[l - 1], prefix=cfg.prefix, **sattrs(cfg.dec_layers[l - 1])),
                      [f"dec{l}.conv.w", f"dec{l}.conv.b"] + stack(f"dec{l}", cfg.dec_layers[l - 1])))
    if cfg.level1_shift:
        calls.append(("Shift", {}, ["dec1.start"]))
    calls.append(("TokenDecoder", dict(chunk=C[0], prefix=cfg.prefix, **sattrs(cfg.dec_layers[0])),
                  ["dec1.emb", "dec1.conv.w", "dec1.conv.b"] + stack("dec1", cfg.dec_layers[0])))
    calls.append(("LMHead", {}, ["lm_head"]))
    return calls


def check_convention(mp, cfg, state_dict=None):
    """Raise ConventionError unless `mp` (with functions) follows docs/onnx-convention.md."""
    def fail(msg):
        raise ConventionError(msg)
    g = mp.graph
    if [(o.domain, o.version) for o in mp.opset_import if o.domain in ("", "ai.onnx")] != [("", OPSET)]:
        fail(f"opset_import {mp.opset_import}: expected default domain version {OPSET}")
    meta = {p.key: p.value for p in mp.metadata_props}
    for k in ("photon.family", "photon.config", "photon.convention"):
        if k not in meta:
            fail(f"metadata_props lacks {k}")
    if meta["photon.family"] != cfg.family or meta["photon.convention"] != CONVENTION:
        fail(f"metadata family/convention {meta['photon.family']}/{meta['photon.convention']}")
    conf = json.loads(meta["photon.config"])
    for k in ("vocab", "width", "levels", "chunk_sizes", "prefix", "n_heads", "n_kv_heads", "head_dim",
              "ffn", "layers", "rope_theta", "norm_eps", "context"):
        if k not in conf:
            fail(f"photon.config lacks {k}")
    if [i.name for i in g.input] != ["tokens"] or g.input[0].type.tensor_type.elem_type != onnx.TensorProto.INT64:
        fail(f"graph inputs {[i.name for i in g.input]}: expected one int64 input 'tokens'")
    dims = g.input[0].type.tensor_type.shape.dim
    if len(dims) != 2 or not dims[0].dim_param or not dims[1].dim_param:
        fail("input tokens must be [B, T] with symbolic B and T")
    want_out = ["logits"] if cfg.family in ("vanilla", "block") else (["logits", "x1"] if cfg.levels == 1 else ["logits", "x1", "xh1"])
    if [o.name for o in g.output] != want_out:
        fail(f"graph outputs {[o.name for o in g.output]}: expected {want_out}")
    inits = {t.name: t for t in g.initializer}
    funcs = {f.name: f for f in mp.functions}
    for f in mp.functions:
        if f.domain != "photon":
            fail(f"function {f.name} in domain {f.domain!r}: expected 'photon'")
    calls = expected_calls(cfg)
    if len(g.node) != len(calls):
        fail(f"top-level graph has {len(g.node)} nodes, expected {len(calls)} calls: "
             f"{[c[0] for c in calls]} got {[n.op_type for n in g.node]}")
    for n, (fn, attrs, wnames) in zip(g.node, calls):
        where = f"node {n.name or n.op_type} ({n.op_type})"
        if n.domain != "photon" or base_name(n.op_type) != fn:
            fail(f"{where}: expected a call of photon.{fn}")
        if n.op_type not in funcs:
            fail(f"{where}: no function definition {n.op_type}")
        f = funcs[n.op_type]
        got = _attr_values(n)
        for k, v in attrs.items():
            if k not in got:
                fail(f"{where}: attribute {k} missing")
            gv = got[k]
            if isinstance(v, float):
                if not isinstance(gv, float) or abs(gv - v) > 1e-6 * max(1.0, abs(v)):
                    fail(f"{where}: attribute {k} = {gv!r}, expected {v!r}")
            elif gv != v:
                fail(f"{where}: attribute {k} = {gv!r}, expected {v!r}")
        declared = list(f.attribute)
        for k in attrs:
            if k not in declared:
                fail(f"function {f.name} does not declare attribute {k}")
        want_formal = formal_inputs(fn, got)
        if list(f.input) != want_formal:
            fail(f"function {f.name}: formal inputs {list(f.input)}, expected {want_formal}")
        if list(f.output) != SIGNATURES[fn][2]:
            fail(f"function {f.name}: outputs {list(f.output)}, expected {SIGNATURES[fn][2]}")
        nact = len(SIGNATURES[fn][0])
        acts, ws = list(n.input[:nact]), list(n.input[nact:])
        if ws != wnames:
            fail(f"{where}: weight inputs {ws}, expected {wnames}")
        for w in ws:
            if w not in inits:
                fail(f"{where}: weight input {w} is not an initializer")
            if state_dict is not None:
                if list(inits[w].dims) != list(state_dict[w].shape):
                    fail(f"{where}: initializer {w} has shape {list(inits[w].dims)}, expected {list(state_dict[w].shape)}")
        for a in acts:
            if a in inits:
                fail(f"{where}: activation input {a} is an initializer")
    return True
