"""Stand-ins shared by the latent, plot and widget tests, so those tests do not depend on models.py."""
from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn


class FakeVAE(nn.Module):
    """A stand-in for vae_core.models.VAE: a linear decoder z (B, D) -> logits (B, 1, 8, 8)."""

    def __init__(self, latent_dim=4, likelihood="bernoulli", seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.config = SimpleNamespace(latent_dim=latent_dim, likelihood=likelihood)
        self.net = nn.Sequential(nn.Linear(latent_dim, 64), nn.Unflatten(1, (1, 8, 8)))

    def decode(self, z):
        return self.net(z)
