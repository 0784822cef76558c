#!/usr/bin/python3
"""PyTorch reference peer: KV-cached greedy generation of the vanilla model, one configuration.

usage: /usr/bin/python3 benchmarks/peers/torch_peer.py --model DIR --prompt P --gen G [--batch B] [--threads T]

Threads are pinned deliberately: torch.set_num_threads(T) and OPENBLAS_NUM_THREADS=T (Debian's
torch calls OpenBLAS, which would otherwise start threads of its own). Prints one JSON object:
prefill/decode seconds and tokens, tokens/s and the peak RSS of the process.
"""
import argparse
import json
import os
import resource
import sys
import time

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--model", required=True, help="vanilla model directory from benchmarks/models/export_mid.py")
ap.add_argument("--prompt", type=int, required=True)
ap.add_argument("--gen", type=int, required=True)
ap.add_argument("--batch", type=int, default=1)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--seed", type=int, default=1)
args = ap.parse_args()
os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
os.environ["OMP_NUM_THREADS"] = str(args.threads)

import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "reference"))
from photon_ref.config import Config  # noqa: E402
from photon_ref.model import build_model  # noqa: E402
from photon_ref.generate import VanillaStages  # noqa: E402

torch.set_num_threads(args.threads)
with open(os.path.join(args.model, "config.json")) as f:
    cfg = Config.from_dict(json.load(f)["config"])
model = build_model(cfg)
model.load_state_dict(torch.load(os.path.join(args.model, "state.pt")))
model.eval()
st = VanillaStages(model)
g = torch.Generator().manual_seed(args.seed)
prompt = torch.randint(0, cfg.vocab, (args.batch, args.prompt), generator=g)
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
with torch.no_grad():
    cache = st.new_cache()
    t0 = time.perf_counter()
    lg = st.lm_step(prompt, cache)[:, -1]
    t1 = time.perf_counter()
    tok = lg.argmax(-1, keepdim=True)
    for _ in range(args.gen - 1):
        lg = st.lm_step(tok, cache)[:, -1]
        tok = lg.argmax(-1, keepdim=True)
    t2 = time.perf_counter()
pre, dec = t1 - t0, t2 - t1
out = dict(peer="pytorch", torch=torch.__version__, threads=args.threads, batch=args.batch,
           prompt=args.prompt, gen=args.gen, prefill_s=pre, decode_s=dec,
           prefill_tokens=args.batch * args.prompt, decode_tokens=args.batch * (args.gen - 1),
           generated=args.batch * args.gen,
           prefill_tps=args.batch * args.prompt / pre, decode_tps=args.batch * (args.gen - 1) / max(dec, 1e-9),
           throughput_tps=args.batch * args.gen / (pre + dec),
           peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, rss_after_load_bytes=rss0,
           cache_bytes=cache.nbytes())
print(json.dumps(out))
