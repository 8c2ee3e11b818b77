"""The spatial broadcast decoder (vae_core.broadcast): every pixel's logit is one small MLP of
``[z, x, y]``, checked against that MLP evaluated by hand pixel by pixel; it trains and saves
through the same VAE, loop and checkpoint code as every other model.

Tolerance: the by-hand evaluation does the same float64 products in another order, so 1e-12.
"""
from __future__ import annotations

import pytest
import torch

from vae_core.broadcast import SpatialBroadcastDecoder
from vae_core.data.batches import Batch
from vae_core.models import VAE, VAEConfig
from vae_core.train import load_checkpoint, save_checkpoint

CFG = VAEConfig(input_shape=(1, 8, 12), latent_dim=3, hidden=(), arch="conv", channels=(4, 4), decoder="broadcast",
                broadcast_hidden=(5, 7))


def _by_hand(dec: SpatialBroadcastDecoder, z: torch.Tensor) -> torch.Tensor:
    """Logit of pixel (i, j): the MLP at [z, x_j, y_i], x_j = (j + 1/2) / W * 2 - 1 (left -> right), y_i likewise (top -> bottom)."""
    c, h, w = dec.input_shape
    linears = [m for m in dec.body if isinstance(m, torch.nn.Linear)] + [dec.out]
    out = torch.empty(z.shape[0], c, h, w, dtype=z.dtype)
    for b in range(z.shape[0]):
        for i in range(h):
            for j in range(w):
                a = torch.cat([z[b], torch.tensor([(j + 0.5) / w * 2 - 1, (i + 0.5) / h * 2 - 1], dtype=z.dtype)])
                for k, lin in enumerate(linears):
                    a = lin.weight @ a + lin.bias
                    if k < len(linears) - 1:
                        a = a.clamp_min(0)  # ReLU between layers, none after the last
                out[b, :, i, j] = a
    return out


def test_each_pixel_is_the_mlp_of_the_code_and_its_own_position():
    torch.manual_seed(0)
    dec = SpatialBroadcastDecoder((2, 5, 4), latent_dim=3, hidden=(6, 4)).double()
    z = torch.randn(3, 3, dtype=torch.float64)
    got = dec(z)
    assert got.shape == (3, 2, 5, 4)
    torch.testing.assert_close(got, _by_hand(dec, z), rtol=1e-12, atol=1e-12)


def test_no_hidden_layer_is_a_linear_map_of_z_x_y():
    torch.manual_seed(1)
    dec = SpatialBroadcastDecoder((1, 4, 4), latent_dim=2, hidden=()).double()
    z = torch.randn(2, 2, dtype=torch.float64)
    torch.testing.assert_close(dec(z), _by_hand(dec, z), rtol=1e-12, atol=1e-12)
    assert sum(p.numel() for p in dec.parameters()) == (2 + 2) * 1 + 1  # independent of the image size


def test_the_vae_uses_it_and_it_trains_and_round_trips_through_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = VAE(CFG)
    assert isinstance(model.decoder, SpatialBroadcastDecoder)
    x = torch.bernoulli(torch.full((16, 1, 8, 12), 0.3), generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    first = None
    for _ in range(30):
        loss = model.loss_terms(Batch(x)).loss
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first - 1.0, f"30 Adam steps should lower the loss on 16 images: {first:.2f} -> {loss.item():.2f}"
    path = save_checkpoint(tmp_path / "b.pt", model)
    back, _ = load_checkpoint(path, device="cpu")
    assert back.config == CFG and isinstance(back.decoder, SpatialBroadcastDecoder)
    z = torch.randn(4, 3)
    torch.testing.assert_close(back.decode(z), model.eval().decode(z), rtol=0, atol=0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(decoder="deconv"), "decoder must be 'mirror' or 'broadcast', got 'deconv'"),
    (dict(decoder="broadcast", broadcast_hidden=(32, 0)), r"broadcast_hidden must be a tuple of positive ints"),
])
def test_config_refuses_bad_decoder_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VAEConfig(**kwargs)


def test_a_wrong_latent_is_explained():
    dec = SpatialBroadcastDecoder((1, 4, 4), latent_dim=3, hidden=(4,))
    with pytest.raises(ValueError, match="z"):
        dec(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="float64"):  # a float64 code for float32 weights: say so, not a matmul error
        dec(torch.zeros(2, 3, dtype=torch.float64))
