"""The spatial broadcast decoder (Watters, Matthey, Burgess & Lerchner 2019).

A deconvolution stack has to *learn* where things are: nothing in ``ConvDecoder`` knows that
pixel (i, j) is at a place. Liu et al. (2018, "CoordConv") showed how badly plain conv nets map
coordinates to positions and back. The spatial broadcast decoder hands the position over:

    z (B, D)  --tile over the H x W grid-->  (B, H, W, D)  --append (x, y) of each pixel-->  (B, H, W, D + 2)
              --the same small MLP at every pixel-->  logit of that pixel  (B, C, H, W)

Every pixel asks one question, "given the code and where I am, am I inside the object?", so a
code that says "centre at (0.3, -0.5), this big" is all the decoder needs: the easiest code for
it to use is one where position and size are coordinates of z. Watters et al. found this
inductive bias gives much cleaner disentangling of position and size than a deconv decoder on
dSprites-like data, with no change to the objective; lesson 07 measures the same on our sprites.

The per-pixel MLP is written with ``nn.Linear`` on the last axis (a 1 x 1 convolution, but the
channels-last layout is several times faster on CPU) and has very few parameters: a
(D + 2) -> 32 -> 32 -> 1 MLP is about 1,400 weights for any image size.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .models import _mlp, check_latents  # models imports this module only when it builds a decoder, so no cycle


class SpatialBroadcastDecoder(nn.Module):
    """z (B, D) -> logits (B, C, H, W): one MLP ``[z, x, y] -> C`` applied at every pixel.

    ``x`` runs from -1 (left) to 1 (right) and ``y`` from -1 (top) to 1 (bottom), at the pixel
    centres. ``hidden`` gives the MLP's widths (ReLU after each); the last layer is linear.
    """

    def __init__(self, input_shape: tuple[int, int, int], latent_dim: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.latent_dim = latent_dim
        c = self.input_shape[0]
        self.body = _mlp([latent_dim + 2, *hidden])
        self.out = nn.Linear(hidden[-1] if hidden else latent_dim + 2, c)

    def forward(self, z: Tensor) -> Tensor:
        check_latents(z, self.latent_dim, dtype=self.out.weight.dtype)
        b = z.shape[0]
        _, h, w = self.input_shape
        ys = (torch.arange(h, dtype=z.dtype, device=z.device) + 0.5) / h * 2 - 1  # pixel centres in (-1, 1), top -> bottom
        xs = (torch.arange(w, dtype=z.dtype, device=z.device) + 0.5) / w * 2 - 1  # left -> right
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")  # (H, W) each
        coords = torch.stack([grid_x, grid_y], dim=-1).expand(b, h, w, 2)  # (H, W, 2) -> (B, H, W, 2)
        tiled = z[:, None, None, :].expand(b, h, w, self.latent_dim)  # (B, D) -> (B, H, W, D)
        logits = self.out(self.body(torch.cat([tiled, coords], dim=-1)))  # (B, H, W, D + 2) -> (B, H, W, C)
        return logits.permute(0, 3, 1, 2)  # (B, H, W, C) -> (B, C, H, W)
