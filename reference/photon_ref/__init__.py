"""Reference PHOTON implementation (PyTorch): the oracle for the photon compiler and runtime.

Follows ../../shared/docs/photon-model.md sections 1, 2 and 5 (see docs/reference.md).
"""
from .config import Config, fixture_config, tiny_config
from .model import build_model, PhotonModel, VanillaModel

__all__ = ["Config", "fixture_config", "tiny_config", "build_model", "PhotonModel", "VanillaModel"]
