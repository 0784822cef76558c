import os
import warnings

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import torch

torch.set_num_threads(1)
warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
warnings.filterwarnings("ignore", message=".*TracerWarning.*")

from photon_ref import fixture_config, build_model          # noqa: E402
from photon_ref.model import init_weights                   # noqa: E402

REF = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(REF)
FIXTURES = os.path.join(ROOT, "test", "fixtures")
MODELS = os.path.join(REF, "models")

# teacher-forced forward vs step-by-step cached generation, f32 on CPU (observed <= 1.1e-4 on
# logits of magnitude ~30; latents ~1e-6)
LOGITS_ATOL = 2e-4
LATENT_ATOL = 1e-5


def fixture_model(name, seed=1, **overrides):
    cfg = fixture_config(name)
    if overrides:
        d = cfg.to_dict()
        d.update(overrides)
        cfg = type(cfg).from_dict(d)
    m = build_model(cfg)
    init_weights(m, "fixture", torch.Generator().manual_seed(seed))
    m.eval()
    return m


def random_tokens(n, vocab=256, seed=0, batch=1):
    return torch.randint(0, vocab, (batch, n), generator=torch.Generator().manual_seed(seed))


def forward_logits(model, tokens):
    with torch.no_grad():
        out = model(tokens)
    return out[0] if isinstance(out, tuple) else out
