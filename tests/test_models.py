"""Tests for vae_core.models.

Note on tolerances. Exact comparisons (``torch.equal``) are used where the same floats are
computed twice by the same code; ``assert_close`` with float32 defaults (rtol 1.3e-6, atol 1e-5)
where an independent reference (``torch.distributions``, a hand-written formula) computes the
same quantity by a different sequence of float32 operations. The Monte Carlo test of
``reparameterize`` draws n = 200,000 samples: the standard error of the mean is sigma / sqrt(n)
= 2 / 447 = 0.0045 and of the variance about sigma^2 * sqrt(2 / n) = 0.0126, so 5 standard
errors (0.023 and 0.063) fail by chance with probability below 1e-6, and the draw is seeded anyway.
"""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from vae_core import losses
from vae_core.models import (
    VAE,
    AutoEncoder,
    ConvDecoder,
    ConvEncoder,
    MLPDecoder,
    MLPEncoder,
    VAEConfig,
    build_model,
    default_channels,
    pytorch_examples_config,
)

SIZES = [(1, 8, 8), (1, 28, 28), (1, 64, 64)]
ARCHS = ["mlp", "conv"]
LIKELIHOODS = ["bernoulli", "gaussian"]


def small_config(input_shape=(1, 28, 28), arch="mlp", likelihood="bernoulli", latent_dim=3, **kw) -> VAEConfig:
    return VAEConfig(input_shape=input_shape, latent_dim=latent_dim, hidden=(16,), arch=arch, likelihood=likelihood, **kw)


def images(b: int, shape, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, *shape, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------ shapes


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("shape", SIZES)
def test_vae_shapes(shape, arch, likelihood):
    torch.manual_seed(0)
    model = VAE(small_config(shape, arch, likelihood))
    x = images(5, shape)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (5, 3)
    z = model.reparameterize(mu, logvar)
    assert z.shape == (5, 3)
    assert model.decode(z).shape == (5, *shape)
    x_params, mu2, logvar2 = model(x)
    assert x_params.shape == (5, *shape) and mu2.shape == (5, 3) and logvar2.shape == (5, 3)
    terms = model.elbo(x)
    assert terms.recon.shape == terms.kl.shape == terms.elbo.shape == (5,) and terms.loss.shape == ()
    assert model.sample(4).shape == (4, *shape)
    assert model.reconstruct(x).shape == (5, *shape)
    assert model.log_likelihood(x, k=4).shape == (5,)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("shape", SIZES)
def test_autoencoder_shapes(shape, arch):
    torch.manual_seed(0)
    model = AutoEncoder(small_config(shape, arch))
    x = images(5, shape)
    z = model.encode(x)
    assert isinstance(z, torch.Tensor) and z.shape == (5, 3)
    assert model.decode(z).shape == model(x).shape == (5, *shape)
    assert model.reconstruction_error(x).shape == (5,)


@pytest.mark.parametrize(
    "shape, n_convs, features",
    [((1, 8, 8), 2, 64 * 2 * 2), ((1, 28, 28), 2, 64 * 7 * 7), ((1, 64, 64), 4, 64 * 4 * 4), ((3, 64, 64), 4, 64 * 4 * 4)],
)
def test_conv_default_architecture_per_size(shape, n_convs, features):
    enc = ConvEncoder(shape, default_channels(shape), (16,), 3)
    convs = [m for m in enc.conv if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == n_convs
    assert all(c.stride == (2, 2) for c in convs)
    assert enc.conv(images(2, shape)).flatten(1).shape == (2, features)
    dec = ConvDecoder(shape, default_channels(shape), (16,), 3)
    assert dec(torch.zeros(2, 3)).shape == (2, *shape)


def test_linear_mlp_when_hidden_is_empty():
    enc = MLPEncoder((1, 8, 8), (), 2)
    dec = MLPDecoder((1, 8, 8), (), 2)
    assert not any(isinstance(m, torch.nn.ReLU) for m in [*enc.modules(), *dec.modules()])
    mu, logvar = enc(images(3, (1, 8, 8)))
    assert mu.shape == (3, 2) and dec(mu).shape == (3, 1, 8, 8)


def test_pytorch_examples_config_matches_the_reference_net():
    # pytorch/examples vae/main.py: fc1 784->400, fc21/fc22 400->20, fc3 20->400, fc4 400->784
    model = build_model(pytorch_examples_config())
    shapes = sorted(tuple(p.shape) for p in model.parameters())
    expected = sorted([(400, 784), (400,), (20, 400), (20,), (20, 400), (20,), (400, 20), (400,), (784, 400), (784,)])
    assert shapes == expected
    assert sum(p.numel() for p in model.parameters()) == 652_824


# ------------------------------------------------------------------------------------------ the math


def test_reparameterize_matches_formula_and_gradients():
    model = VAE(small_config())
    mu = torch.randn(4, 3, requires_grad=True)
    logvar = torch.randn(4, 3, requires_grad=True)
    z = model.reparameterize(mu, logvar, generator=torch.Generator().manual_seed(1))
    eps = torch.randn(4, 3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(z, mu + torch.exp(0.5 * logvar) * eps)
    z.sum().backward()
    # dz/dmu = 1, dz/dlogvar = 0.5 exp(0.5 logvar) eps
    torch.testing.assert_close(mu.grad, torch.ones(4, 3))
    torch.testing.assert_close(logvar.grad, 0.5 * torch.exp(0.5 * logvar.detach()) * eps)


def test_reparameterize_gradcheck_float64():
    model = VAE(small_config()).double()
    mu = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    logvar = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)

    def f(m, lv):  # fixed eps: the same generator seed on every call
        return model.reparameterize(m, lv, generator=torch.Generator().manual_seed(0))

    assert torch.autograd.gradcheck(f, (mu, logvar))


def test_reparameterize_samples_have_the_right_moments():
    model = VAE(small_config())
    n = 200_000
    mu = torch.full((n, 1), 1.0)
    logvar = torch.full((n, 1), math.log(4.0))
    z = model.reparameterize(mu, logvar, generator=torch.Generator().manual_seed(0))
    assert abs(z.mean().item() - 1.0) < 0.023  # 5 standard errors, see the note at the top
    assert abs(z.var().item() - 4.0) < 0.063


def test_reparameterize_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"logvar must have the shape of mu \(4, 3\), got \(4, 2\)"):
        VAE(small_config()).reparameterize(torch.zeros(4, 3), torch.zeros(4, 2))


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_elbo_against_torch_distributions(likelihood):
    torch.manual_seed(0)
    model = VAE(small_config(likelihood=likelihood, gaussian_logvar=-1.0))
    x = images(6, (1, 28, 28))
    torch.manual_seed(3)
    terms = model.elbo(x)
    torch.manual_seed(3)  # the same z sample
    x_params, mu, logvar = model(x)
    if likelihood == "bernoulli":
        log_px = Bernoulli(logits=x_params, validate_args=False).log_prob(x).sum((1, 2, 3))
    else:
        log_px = Normal(x_params, math.exp(-0.5)).log_prob(x).sum((1, 2, 3))
    kl = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(terms.recon, -log_px)
    torch.testing.assert_close(terms.kl, kl)
    torch.testing.assert_close(terms.elbo, log_px - kl)
    torch.testing.assert_close(terms.loss, (-log_px + kl).mean())


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("batch_k", [10, 4])
def test_log_likelihood_against_reference(likelihood, batch_k):
    # log p(x) ~= logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K, with the same draws
    torch.manual_seed(0)
    model = VAE(small_config(likelihood=likelihood))
    x = images(5, (1, 28, 28))
    k = 10
    est = model.log_likelihood(x, k=k, batch_k=batch_k, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        mu, logvar = model.encode(x)
        g = torch.Generator().manual_seed(7)
        eps = torch.cat([torch.randn(min(batch_k, k - s), 5, 3, generator=g) for s in range(0, k, batch_k)])
        std = torch.exp(0.5 * logvar)
        z = mu + std * eps  # (K, B, D)
        out = model.decode(z.reshape(-1, 3)).view(k, 5, 1, 28, 28)
        if likelihood == "bernoulli":
            log_px = Bernoulli(logits=out, validate_args=False).log_prob(x.expand_as(out)).sum((2, 3, 4))
        else:
            log_px = Normal(out, 1.0).log_prob(x.expand_as(out)).sum((2, 3, 4))
        log_w = log_px + Normal(0.0, 1.0).log_prob(z).sum(-1) - Normal(mu, std).log_prob(z).sum(-1)
        ref = torch.logsumexp(log_w, 0) - math.log(k)
    torch.testing.assert_close(est, ref)


def test_log_likelihood_bound_is_above_elbo_and_grows_with_k():
    # E[L_1] <= E[L_10] <= E[L_100] (Burda et al. 2016, Thm 1); averaged over 64 images, seeded.
    torch.manual_seed(0)
    model = VAE(small_config(latent_dim=5))
    x = images(64, (1, 28, 28))
    torch.manual_seed(1)
    with torch.no_grad():
        elbo = model.elbo(x).elbo.mean()
    g = torch.Generator().manual_seed(2)
    ll10 = model.log_likelihood(x, k=10, generator=g).mean()
    ll100 = model.log_likelihood(x, k=100, batch_k=7, generator=g).mean()
    assert elbo < ll10 < ll100


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_sample_and_reconstruct_are_images_in_unit_interval(likelihood):
    torch.manual_seed(0)
    model = VAE(small_config(likelihood=likelihood))
    with torch.no_grad():  # push the decoder's outputs far out so a missing squash would show
        model.decoder.out.bias.add_(torch.linspace(-50, 50, 784))
    s = model.sample(8, generator=torch.Generator().manual_seed(0))
    r = model.reconstruct(images(8, (1, 28, 28)))
    for out in (s, r):
        assert out.min() >= 0 and out.max() <= 1
        assert out.min() < 0.01 and out.max() > 0.99
    if likelihood == "gaussian":  # decode itself gives the mean in (0, 1), not only sample()
        with torch.no_grad():
            mean = model.decode(torch.randn(8, 3))
        assert mean.min() >= 0 and mean.max() <= 1
    s2 = model.sample(8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(s, s2)
    assert not torch.equal(s, model.sample(8, generator=torch.Generator().manual_seed(1)))


def test_reconstruct_decodes_the_posterior_mean():
    torch.manual_seed(0)
    model = VAE(small_config())
    x = images(4, (1, 28, 28))
    with torch.no_grad():
        expected = torch.sigmoid(model.decode(model.encode(x)[0]))
    assert torch.equal(model.reconstruct(x), expected)


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_autoencoder_reconstruction_error_against_reference(likelihood):
    torch.manual_seed(0)
    model = AutoEncoder(small_config(likelihood=likelihood, gaussian_logvar=0.5))
    x = images(4, (1, 28, 28))
    out = model(x)
    if likelihood == "bernoulli":
        ref = torch.nn.functional.binary_cross_entropy(torch.sigmoid(out), x, reduction="none").sum((1, 2, 3))
        recon = torch.sigmoid(out)
    else:
        ref = -Normal(out, math.exp(0.25)).log_prob(x).sum((1, 2, 3))
        recon = out
    torch.testing.assert_close(model.reconstruction_error(x), ref, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(model.reconstruct(x), recon)


# ------------------------------------------------------------------------------------------ bad input


def test_wrong_image_shape_is_explained():
    model = VAE(pytorch_examples_config())
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 1, 28, 28\), got \(32, 784\); reshape with x.view\(-1, 1, 28, 28\)"):
        model.encode(torch.rand(32, 784))
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 1, 28, 28\), got \(2, 1, 8, 8\)"):
        model.elbo(torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"expected float images in \[0, 1\], got dtype torch.uint8"):
        model.encode(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"expected z of shape \(B, 20\), got \(20,\)"):
        model.decode(torch.zeros(20))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"input_shape": (28, 28)}, r"input_shape must be \(C, H, W\)"),
        ({"latent_dim": 0}, r"latent_dim must be a positive int, got 0"),
        ({"hidden": (400, -1)}, r"hidden must be a tuple of positive ints"),
        ({"arch": "resnet"}, r"arch must be 'mlp' or 'conv', got 'resnet'"),
        ({"likelihood": "poisson"}, r"likelihood must be 'bernoulli' or 'gaussian'"),
        ({"gaussian_logvar": float("nan")}, r"gaussian_logvar must be a finite float"),
        ({"channels": (32, 64)}, r"channels is only used by arch='conv'"),
        ({"arch": "conv", "input_shape": (1, 30, 30)}, r"default channels for 8x8, 28x28, 64x64 images, got input_shape \(1, 30, 30\)"),
        ({"arch": "conv", "channels": (8, 8, 8)}, r"must be divisible by 8; got input_shape \(1, 28, 28\)"),
        ({"arch": "conv", "channels": ()}, r"channels must be None or a non-empty tuple"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VAEConfig(**kwargs)


def test_config_accepts_lists_and_replace():
    cfg = VAEConfig(input_shape=[1, 8, 8], hidden=[32, 16])  # what a checkpoint's asdict comes back as
    assert cfg.input_shape == (1, 8, 8) and cfg.hidden == (32, 16)
    conv = dataclasses.replace(cfg, arch="conv", input_shape=(1, 64, 64))
    assert conv.conv_channels == (32, 32, 64, 64)
    with pytest.raises(ValueError, match="expected a VAEConfig"):
        build_model({"latent_dim": 2})


def test_bad_sample_and_log_likelihood_arguments():
    model = VAE(small_config())
    with pytest.raises(ValueError, match="n must be a positive int, got 0"):
        model.sample(0)
    with pytest.raises(ValueError, match="k must be a positive int, got 0"):
        model.log_likelihood(images(2, (1, 28, 28)), k=0)
    with pytest.raises(ValueError, match="batch_k must be a positive int or None, got -1"):
        model.log_likelihood(images(2, (1, 28, 28)), k=3, batch_k=-1)


def test_losses_module_is_used_for_the_elbo(monkeypatch):
    """VAE.elbo delegates to losses.elbo (one ELBO implementation in the package)."""
    calls = []
    real = losses.elbo

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(losses, "elbo", spy)
    VAE(small_config()).elbo(images(2, (1, 28, 28)), beta=2.0, free_bits=0.5)
    assert calls and calls[0]["beta"] == 2.0 and calls[0]["free_bits"] == 0.5


def test_odd_inputs_get_errors_that_name_the_argument_and_the_fix():
    vae, ae = VAE(small_config()), AutoEncoder(small_config())
    x = torch.rand(2, 1, 28, 28)
    with pytest.raises(ValueError, match=r"input images is torch.float64 but the model's weights are torch.float32; .*\.to\(torch.float32\)"):
        vae.encode(x.double())
    with pytest.raises(ValueError, match=r"input images is torch.float64"):
        ae.encode(x.double())
    with pytest.raises(ValueError, match=r"expected float latents z, got dtype torch.int64; convert with z.float\(\)"):
        vae.decode(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"input z is torch.float64"):
        vae.decode(torch.zeros(2, 3, dtype=torch.float64))
    for call in (lambda: vae.elbo(x[:0]), lambda: vae.log_likelihood(x[:0], k=3), lambda: ae.reconstruction_error(x[:0])):
        with pytest.raises(ValueError, match=r"expected at least one image, got an empty batch of shape \(0, 1, 28, 28\)"):
            call()
    with pytest.raises(ValueError, match=r"empty batch z"):
        vae.decode(torch.zeros(0, 3))
    with pytest.raises(ValueError, match=r"mu must be a floating-point torch.Tensor, got list"):
        vae.reparameterize([0.0, 1.0], [0.0, 0.0])
    with pytest.raises(ValueError, match=r"mu must be a floating-point tensor, got dtype torch.int64; convert it with mu.float\(\)"):
        vae.reparameterize(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long))
    # a float64 model takes float64 input
    assert vae.double().encode(x.double())[0].dtype == torch.float64
