"""Shortcuts are caught: an answer that calls the implementation the exercise asks for scores 0.

Unit tests of ``vae_core.grading.shortcuts`` (every alias of torch's log-sum-exp and softplus, the
library's and torch.distributions' KL; honest code passes; the spread check), then the real
lessons: each shortcut or cheat variant, typed into the learner's copy in place of the answer,
graded by nbgrader with the course's tests, loses that exercise and only that one.
"""
from __future__ import annotations

import math

import nbformat
import pytest
import torch
import torch.nn.functional as F

import nb_helpers as h
from vae_core import losses
from vae_core.grading.course import resolve_lesson
from vae_core.grading.shortcuts import ShortcutError, check_spread, forbid

X = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
_CAPTURED = torch.logsumexp  # a reference taken before any test: an alias is the same function


def _honest_lse(x, dim):
    m = x.amax(dim=dim, keepdim=True)
    return (m + (x - m).exp().sum(dim=dim, keepdim=True).log()).squeeze(dim)


@pytest.mark.parametrize("call", [
    lambda: X.logsumexp(1), lambda: torch.logsumexp(X, 1), lambda: torch.special.logsumexp(X, 1),
    lambda: _CAPTURED(X, 1), lambda: torch.ops.aten.logsumexp(X, [1]), lambda: X.logcumsumexp(1)[:, -1],
], ids=["method", "torch", "special", "captured alias", "aten op", "logcumsumexp"])
def test_every_spelling_of_torchs_logsumexp_is_caught(call):
    with pytest.raises(ShortcutError, match="asks you to write logsumexp yourself, but your answer called torch's (special_)?_?log(cum)?sumexp"):
        with forbid("logsumexp"):
            call()


@pytest.mark.parametrize("call", [lambda: F.softplus(X), lambda: torch.nn.Softplus()(X),
                                  lambda: torch.logaddexp(X, torch.zeros(()))], ids=["F", "module", "logaddexp"])
def test_every_spelling_of_softplus_is_caught(call):
    with pytest.raises(ShortcutError, match="softplus"):
        with forbid("softplus"):
            call()


def test_the_library_and_torch_distributions_kl_are_caught():
    from torch.distributions import Independent, Normal, kl_divergence

    m = torch.zeros(2, 3)
    alias = losses.kl_diag_gaussians
    for call in (lambda: alias(m, m, m, m), lambda: losses.kl_standard_normal(m, m),
                 lambda: kl_divergence(Independent(Normal(m, 1.0), 1), Independent(Normal(m, 1.0), 1))):
        with pytest.raises(ShortcutError, match="asks you to write kl_diag_gaussians"):
            with forbid("kl_diag_gaussians"):
                call()


def test_honest_code_passes_and_the_profiler_is_restored():
    import sys

    before = sys.getprofile()
    with forbid("logsumexp", "softplus", "kl_diag_gaussians") as hits:
        out = _honest_lse(X, 1)
        sp = X.clamp(min=0) + torch.log1p(torch.exp(-X.abs()))
    assert hits == [] and sys.getprofile() is before
    torch.testing.assert_close(out, torch.logsumexp(X, 1))
    torch.testing.assert_close(sp, F.softplus(X))
    with pytest.raises(ValueError, match="no shortcut list for \\['nope'\\]"):
        with forbid("nope"):
            pass


def test_check_spread_fails_closed_form_plus_noise_and_passes_a_real_estimator():
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(2000, generator=g) * 0.7 + 1.0
    honest = torch.randn(2000, generator=g) * 0.7 + 1.0
    check_spread(honest, ref)
    cheat = 1.0 + 1e-3 * torch.randn(2000, generator=g) / math.sqrt(5)
    with pytest.raises(AssertionError, match="spread of your estimates is 0.00"):
        check_spread(cheat, ref)


# --- the real lessons: shortcut and cheat variants lose their exercise ---------------------------

# Honest answers that a variant keeps beside the shortcut it takes in the same cell.
_SOFTPLUS = "def softplus(x):\n    return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))\n"
_LERP = ("def lerp(z0, z1, steps):\n"
         "    t = torch.linspace(0, 1, steps, dtype=z0.dtype)[:, None]\n"
         "    return (1 - t) * z0 + t * z1\n")
_SLERP = ("def slerp(z0, z1, steps):\n"
          "    omega = torch.acos((z0 @ z1 / (z0.norm() * z1.norm())).clamp(-1, 1))\n"
          "    t = torch.linspace(0, 1, steps, dtype=z0.dtype)[:, None]\n"
          "    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)\n")

VARIANTS = {
    "00": {
        "ex1_logsumexp": {
            "method": "def logsumexp(x, dim):\n    return x.logsumexp(dim)\n",
            "special": "def logsumexp(x, dim):\n    return torch.special.logsumexp(x, dim)\n",
            "alias": "_lse = torch.logsumexp\ndef logsumexp(x, dim):\n    return _lse(x, dim)\n",
        },
        "ex2_softplus": {
            "F": "def softplus(x):\n    return F.softplus(x)\n",
            "logaddexp": "def softplus(x):\n    return torch.logaddexp(x, torch.zeros_like(x))\n",
            "bce": (_SOFTPLUS + "def bernoulli_log_prob(logits, x):\n"
                    "    return -F.binary_cross_entropy_with_logits(logits, x, reduction='none')\n"),
            "logsigmoid": (_SOFTPLUS + "def bernoulli_log_prob(logits, x):\n"
                           "    return x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)\n"),
        },
        "ex3_log_mean_exp": {
            "library": "def log_mean_exp(log_w):\n    from vae_core import losses\n    return losses.iwae_bound(log_w)\n",
        },
    },
    "01": {
        "ex2_recon_loss": {
            "library": ("def reconstruction_loss(logits, x, kind='bce'):\n"
                        "    from vae_core.losses import bernoulli_log_prob, gaussian_log_prob\n"
                        "    if kind == 'bce':\n"
                        "        return -bernoulli_log_prob(logits, x).mean()\n"
                        "    if kind == 'mse':\n"
                        "        return ((torch.sigmoid(logits) - x) ** 2).flatten(1).sum(1).mean()\n"
                        "    raise ValueError(kind)\n"),
        },
        "ex4_pca_reconstruct": {
            "sklearn": ("def pca_reconstruct(X, mean, V):\n"
                        "    from sklearn.decomposition import PCA\n"
                        "    p = PCA(n_components=V.shape[1])\n"
                        "    p.components_, p.mean_ = V.T.numpy(), mean.numpy()\n"
                        "    Z = torch.tensor(p.transform(X.numpy()), dtype=X.dtype)\n"
                        "    return Z, torch.tensor(p.inverse_transform(Z.numpy()), dtype=X.dtype)\n"),
        },
        "ex5_code_gaussian": {
            "torch.cov": ("def sample_code_gaussian(codes, n, generator):\n"
                          "    eps = torch.randn((n, codes.shape[1]), generator=generator, dtype=codes.dtype)\n"
                          "    return codes.mean(0) + eps @ torch.linalg.cholesky(torch.cov(codes.T)).T\n"),
            "MultivariateNormal": ("def sample_code_gaussian(codes, n, generator):\n"
                                   "    c = codes - codes.mean(0)\n"
                                   "    mvn = torch.distributions.MultivariateNormal(codes.mean(0), c.T @ c / (len(codes) - 1))\n"
                                   "    return mvn.sample((n,))\n"),
        },
        "ex3_pca_fit": {
            "sklearn": ("def pca_fit(X, k):\n"
                        "    from sklearn.decomposition import PCA\n"
                        "    p = PCA(n_components=k, svd_solver='full').fit(X.detach().double().numpy())\n"
                        "    return (torch.tensor(p.mean_, dtype=X.dtype), torch.tensor(p.components_, dtype=X.dtype).T)\n"),
            "torch.pca_lowrank": ("def pca_fit(X, k):\n"
                                  "    _, _, V = torch.pca_lowrank(X, q=min(X.shape), center=True, niter=10)\n"
                                  "    return X.mean(0), V[:, :k]\n"),
        },
    },
    "03": {
        "ex1_reparameterize": {
            "rsample": ("def reparameterize(mu, logvar, eps):\n"
                        "    torch.manual_seed(0)\n"
                        "    return Normal(mu, torch.exp(0.5 * logvar)).rsample(eps.shape[:eps.dim() - mu.dim()])\n"),
        },
        "ex4_z_score": {
            "scipy": ("def mc_z_score(samples, exact):\n"
                      "    from scipy import stats\n"
                      "    return float(stats.ttest_1samp(samples.double().numpy(), exact).statistic)\n"
                      "def paired_z_score(a, b):\n"
                      "    from scipy import stats\n"
                      "    return float(stats.ttest_rel(a.double().numpy(), b.double().numpy()).statistic)\n"),
        },
    },
    "04": {
        "ex1_my_vae": {
            # its own layers and passes, the library's loss
            "library elbo": ("class MyVAE(nn.Module):\n"
              "    def __init__(self, image_shape=(1, 28, 28), hidden=400, latent=20):\n"
              "        super().__init__()\n"
              "        self.image_shape, self.latent = tuple(image_shape), latent\n"
              "        self.enc = nn.Linear(math.prod(self.image_shape), hidden)\n"
              "        self.mu, self.logvar = nn.Linear(hidden, latent), nn.Linear(hidden, latent)\n"
              "        self.dec1, self.dec2 = nn.Linear(latent, hidden), nn.Linear(hidden, math.prod(self.image_shape))\n"
              "    def encode(self, x):\n"
              "        h = torch.relu(self.enc(x.flatten(1)))\n"
              "        return self.mu(h), self.logvar(h)\n"
              "    def reparameterize(self, mu, logvar, eps):\n        return mu + torch.exp(0.5 * logvar) * eps\n"
              "    def decode(self, z):\n        return self.dec2(torch.relu(self.dec1(z))).view(-1, *self.image_shape)\n"
              "    def neg_elbo(self, x, eps):\n"
              "        mu, logvar = self.encode(x)\n"
              "        t = losses.elbo(x, self.decode(self.reparameterize(mu, logvar, eps)), mu, logvar)\n"
              "        return t.loss, t.recon, t.kl\n"),
            # its own layers and passes, torch.distributions' densities and KL
            "torch.distributions": ("class MyVAE(nn.Module):\n"
              "    def __init__(self, image_shape=(1, 28, 28), hidden=400, latent=20):\n"
              "        super().__init__()\n"
              "        self.image_shape, self.latent = tuple(image_shape), latent\n"
              "        self.enc = nn.Linear(math.prod(self.image_shape), hidden)\n"
              "        self.mu, self.logvar = nn.Linear(hidden, latent), nn.Linear(hidden, latent)\n"
              "        self.dec1, self.dec2 = nn.Linear(latent, hidden), nn.Linear(hidden, math.prod(self.image_shape))\n"
              "    def encode(self, x):\n"
              "        h = torch.relu(self.enc(x.flatten(1)))\n"
              "        return self.mu(h), self.logvar(h)\n"
              "    def reparameterize(self, mu, logvar, eps):\n        return mu + torch.exp(0.5 * logvar) * eps\n"
              "    def decode(self, z):\n        return self.dec2(torch.relu(self.dec1(z))).view(-1, *self.image_shape)\n"
              "    def neg_elbo(self, x, eps):\n"
              "        from torch.distributions import Bernoulli, Independent, Normal, kl_divergence\n"
              "        mu, logvar = self.encode(x)\n"
              "        q = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)\n"
              "        recon = -Independent(Bernoulli(logits=self.decode(self.reparameterize(mu, logvar, eps))), 3).log_prob(x)\n"
              "        kl = kl_divergence(q, Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1))\n"
              "        return (recon + kl).mean(), recon, kl\n"),
        },
        "ex2_train_epochs": {
            "fit": ("def train_epochs(model, optimizer, batches, epochs, generator):\n"
                    "    from vae_core.train import TrainConfig, fit\n"
                    "    config = TrainConfig(epochs=epochs, batch_size=len(batches[0]), lr=optimizer.param_groups[0]['lr'])\n"
                    "    return [-v for v in fit(model, torch.cat(batches), config=config).train_elbo]\n"),
        },
        "ex3_log_weights": {
            "library": ("@torch.no_grad()\n"
                        "def log_weights(model, x, K, generator):\n"
                        "    mu, logvar = model.encode(x)\n"
                        "    eps = torch.randn((K, *mu.shape), generator=generator, dtype=mu.dtype)\n"
                        "    z = mu + torch.exp(0.5 * logvar) * eps\n"
                        "    logits = model.decode(z.reshape(-1, mu.shape[1])).reshape(K, *x.shape)\n"
                        "    return (losses.bernoulli_log_prob(logits, x.expand_as(logits), event_dims=3)\n"
                        "            + losses.log_normal_std(z) - losses.log_normal_diag(z, mu, logvar))\n"),
        },
        "ex4_direction_rates": {
            "library": ("def direction_rates(eigenvalues, sigma2):\n"
                        "    from vae_core.diagnostics import linear_gaussian_rates\n"
                        "    return linear_gaussian_rates(eigenvalues, sigma2)\n"),
        },
    },
    "05": {
        "ex1_prior_mass": {
            "chi2": ("def prior_mass_within(r, d):\n"
                     "    return torch.distributions.Chi2(torch.tensor(float(d), dtype=r.dtype)).cdf(r ** 2)\n"),
            "gamma": ("def prior_mass_within(r, d):\n"
                      "    return torch.distributions.Gamma(torch.tensor(d / 2, dtype=r.dtype), 1.0).cdf(r ** 2 / 2)\n"),
        },
        "ex2_slerp": {
            "torch.lerp": ("def lerp(z0, z1, steps):\n"
                           "    t = torch.linspace(0, 1, steps, dtype=z0.dtype)[:, None]\n"
                           "    return torch.lerp(z0.expand(steps, -1), z1.expand(steps, -1), t)\n" + _SLERP),
            "library lerp": ("def lerp(z0, z1, steps):\n    from vae_core import latent\n    return latent.lerp(z0, z1, steps)\n" + _SLERP),
            "library slerp": (_LERP + "def slerp(z0, z1, steps):\n    from vae_core import latent\n    return latent.interpolate(z0, z1, steps, method='slerp')\n"),
        },
        "ex3_steps": {
            "library": "def path_step_sizes(images):\n    from vae_core.latent import path_smoothness\n    return path_smoothness(images)\n",
        },
        "ex5_kl_split": {
            "library": ("def kl_split(mu, logvar, eps):\n"
                        "    from vae_core.priors import aggregate_log_prob\n"
                        "    z = mu + torch.exp(0.5 * logvar) * eps\n"
                        "    own = (-0.5 * (eps ** 2 + logvar + math.log(2 * math.pi))).sum(1)\n"
                        "    agg = aggregate_log_prob(mu, logvar, z)\n"
                        "    prior = (-0.5 * (z ** 2 + math.log(2 * math.pi))).sum(1)\n"
                        "    return float((own - agg).mean()), float((agg - prior).mean())\n"),
            "torch.distributions": ("def kl_split(mu, logvar, eps):\n"
                                    "    import torch.distributions as D\n"
                                    "    z = mu + torch.exp(0.5 * logvar) * eps\n"
                                    "    comp = D.Independent(D.Normal(mu, torch.exp(0.5 * logvar)), 1)\n"
                                    "    mix = D.MixtureSameFamily(D.Categorical(logits=torch.zeros(len(mu))), comp).log_prob(z)\n"
                                    "    own = comp.log_prob(z)\n"
                                    "    prior = (-0.5 * (z ** 2 + math.log(2 * math.pi))).sum(1)\n"
                                    "    return float((own - mix).mean()), float((mix - prior).mean())\n"),
        },
    },
    "02": {
        "ex1_kl_closed_form": {
            "library": ("def kl_diag_gaussians(mu_q, logvar_q, mu_p, logvar_p):\n"
                        "    from vae_core.losses import kl_diag_gaussians as library_kl\n"
                        "    return library_kl(mu_q, logvar_q, mu_p, logvar_p)\n"),
            "torch.distributions": ("def kl_diag_gaussians(mu_q, logvar_q, mu_p, logvar_p):\n"
                                    "    mu_p, logvar_p = torch.broadcast_tensors(mu_p, logvar_p)\n"
                                    "    q = Independent(Normal(mu_q, (0.5 * logvar_q).exp()), 1)\n"
                                    "    p = Independent(Normal(mu_p.expand_as(mu_q), (0.5 * logvar_p).exp().expand_as(mu_q)), 1)\n"
                                    "    return kl_divergence(q, p)\n"),
        },
        "ex2_kl_monte_carlo": {
            # the closed form plus a little noise: right mean, seeded, different per seed, no spread
            "closed form + noise": (
                "def kl_monte_carlo(mu_q, logvar_q, mu_p, logvar_p, n_samples, generator=None):\n"
                "    kl = 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p) ** 2) / logvar_p.exp() - 1.0).sum(-1)\n"
                "    noise = torch.randn(kl.shape, generator=generator, dtype=kl.dtype)\n"
                "    return kl + 1e-3 * noise / math.sqrt(n_samples)\n"),
        },
        "ex3_ppca_log_marginal": {
            "MultivariateNormal": (
                "def ppca_log_marginal(x, W, b, s2):\n"
                "    C = W @ W.T + s2 * torch.eye(W.shape[0], dtype=W.dtype)\n"
                "    return MultivariateNormal(b, C).log_prob(x)\n"),
        },
        "ex5_ppca_elbo": {
            "kl_divergence": ("def ppca_elbo(x, W, b, s2, q_mu, q_logvar):\n"
                              "    from torch.distributions import Normal, kl_divergence\n"
                              "    s2 = torch.as_tensor(s2, dtype=x.dtype)\n"
                              "    v = q_logvar.exp()\n"
                              "    sq = ((x - b - q_mu @ W.T) ** 2).sum(-1) + (v * (W ** 2).sum(0)).sum(-1)\n"
                              "    recon = -0.5 * W.shape[0] * torch.log(2 * math.pi * s2) - 0.5 * sq / s2\n"
                              "    return recon - kl_divergence(Normal(q_mu, v.sqrt()), Normal(0.0, 1.0)).sum(-1)\n"),
        },
    },
    "06": {
        "ex1_rate_distortion": {
            "library KL": ("def rate_distortion_point(model, x, eps):\n"
                           "    from vae_core import losses\n"
                           "    with torch.no_grad():\n"
                           "        mu, logvar = model.encode(x)\n"
                           "        S, B, D = eps.shape\n"
                           "        logits = model.decode((mu + (0.5 * logvar).exp() * eps).reshape(S * B, D))\n"
                           "        nll = -losses.bernoulli_log_prob(logits, x.repeat(S, *[1] * (x.dim() - 1)))\n"
                           "        return losses.kl_standard_normal(mu, logvar).mean().item(), nll.mean().item()\n"),
        },
        "ex2_active_units": {
            "library": ("def active_units_from_means(mu, threshold=0.01):\n"
                        "    from vae_core.metrics import active_units\n"
                        "    class Means(torch.nn.Module):  # a 'model' whose encoder looks the means up by index\n"
                        "        def encode(self, idx):\n"
                        "            rows = mu[idx.flatten(1)[:, 0].long()]\n"
                        "            return rows, torch.zeros_like(rows)\n"
                        "    idx = torch.arange(len(mu), dtype=torch.float32).view(-1, 1, 1, 1)\n"
                        "    n, activity = active_units(Means(), idx, threshold)\n"
                        "    return n, activity.to(mu.dtype)\n"),
        },
        "ex3_kl_schedule": {
            "library": ("def kl_weight_schedule(t, kind, beta=1.0, warmup=0.25, cycles=4, ratio=0.5):\n"
                        "    from vae_core.train import TrainConfig, kl_weight\n"
                        "    if kind not in ('constant', 'linear', 'cyclical'):\n"
                        "        raise ValueError(kind)\n"
                        "    cfg = TrainConfig(epochs=1000, beta=beta, kl_schedule=None if kind == 'constant' else kind,\n"
                        "                      warmup_epochs=1000 * warmup, cycles=cycles, cycle_ratio=ratio)\n"
                        "    return kl_weight(1000 * t, cfg)\n"),
        },
        "ex4_free_bits": {
            "library": ("def free_bits_kl(mu, logvar, lam):\n"
                        "    from vae_core import losses\n"
                        "    x = torch.zeros(mu.shape[0], 1, dtype=mu.dtype)\n"
                        "    t = losses.elbo(x, x, mu, logvar, free_bits=lam)   # loss = recon mean + free-bits KL\n"
                        "    return t.loss - t.recon.mean()\n"),
        },
    },
    "07": {
        "ex1_beta_vae_loss": {
            "library KL": ("def beta_vae_loss(model, x, eps, beta):\n"
                           "    from vae_core.losses import kl_standard_normal\n"
                           "    mu, logvar = model.encode(x)\n"
                           "    logits = model.decode(mu + torch.exp(0.5 * logvar) * eps)\n"
                           "    recon = F.binary_cross_entropy_with_logits(logits, x, reduction='none').flatten(1).sum(1)\n"
                           "    kl = kl_standard_normal(mu, logvar)\n"
                           "    return (recon + beta * kl).mean(), recon, kl\n"),
        },
        "ex2_traverse_latent": {
            "library": ("def traverse_latent(model, x, dim, values):\n"
                        "    from vae_core.latent import to_images, traverse\n"
                        "    with torch.no_grad():\n"
                        "        return to_images(model, traverse(model.encode(x)[0][0], dim, values), likelihood='bernoulli')\n"),
        },
        "ex3_mutual_information": {
            "sklearn": ("def mutual_information(a, b):\n"
                        "    from sklearn.metrics import mutual_info_score\n"
                        "    return float(mutual_info_score(a.numpy(), b.numpy()))\n"),
            "library": ("def mutual_information(a, b):\n"
                        "    from vae_core.disentanglement import mutual_info_matrix\n"
                        "    return float(mutual_info_matrix(a[:, None], b[:, None])[0, 0])\n"),
        },
        "ex4_mig_score": {
            "library": ("def mig_score(codes, factors, n_bins=20):\n"
                        "    from vae_core.disentanglement import mig_report\n"
                        "    r = mig_report(codes, factors, n_bins)\n"
                        "    return r.score, torch.tensor([row.gap for row in r.rows], dtype=torch.float64)\n"),
        },
    },
    "08": {
        "ex1_cond_vae": {
            # the library's layers under the asked names: the parameters match, the construction is the library's
            "library CVAE": ("class CondVAE(nn.Module):\n"
                             "    def __init__(self, image_shape=(1, 28, 28), n_classes=10, hidden=256, latent_dim=16):\n"
                             "        super().__init__()\n"
                             "        from vae_core.cvae import CVAE, CVAEConfig\n"
                             "        lib = CVAE(CVAEConfig(input_shape=tuple(image_shape), n_classes=n_classes, latent_dim=latent_dim, hidden=(hidden,)))\n"
                             "        self.enc_hidden, self.enc_mu, self.enc_logvar = lib.encoder.body[0], lib.encoder.heads.mu, lib.encoder.heads.logvar\n"
                             "        self.dec_hidden, self.dec_out = lib.decoder.body[0], lib.decoder.out\n"
                             "        self._lib = [lib]\n"
                             "    def encode(self, x, y):\n        return self._lib[0].encode(x, y)\n"
                             "    def reparameterize(self, mu, logvar, eps):\n        return mu + torch.exp(0.5 * logvar) * eps\n"
                             "    def decode(self, z, y):\n        return self._lib[0].decode(z, y)\n"),
        },
        "ex2_cvae_elbo": {
            "library KL": ("def cvae_elbo(model, x, y, eps):\n"
                           "    from vae_core.losses import kl_standard_normal\n"
                           "    mu, logvar = model.encode(x, y)\n"
                           "    logits = model.decode(mu + torch.exp(0.5 * logvar) * eps, y)\n"
                           "    recon = F.binary_cross_entropy_with_logits(logits, x, reduction='none').flatten(1).sum(1)\n"
                           "    kl = kl_standard_normal(mu, logvar)\n"
                           "    return recon, kl, -(recon + kl)\n"),
        },
        "ex3_fit_probe": {
            "sklearn": ("def fit_probe(features, labels, n_classes, steps=200, lr=0.5):\n"
                        "    from sklearn.linear_model import LogisticRegression\n"
                        "    x = features.double()\n"
                        "    mean, std = x.mean(0), x.std(0, correction=0) + 1e-6\n"
                        "    clf = LogisticRegression(max_iter=steps).fit(((x - mean) / std).numpy(), labels.numpy())\n"
                        "    return torch.tensor(clf.coef_).T, torch.tensor(clf.intercept_), mean, std\n"),
        },
        "ex4_label_posterior": {
            # the library's bound wherever the model has one (the test's stand-in models do not)
            "library IWAE": ("def label_posterior(model, x, eps, n_classes):\n"
                             "    with torch.no_grad():\n"
                             "        labels = [torch.full((len(x),), k) for k in range(n_classes)]\n"
                             "        if hasattr(model, 'log_likelihood'):\n"
                             "            ll = torch.stack([model.log_likelihood(x, y, k=1) for y in labels], 1)\n"
                             "        else:\n"
                             "            ll = torch.stack([cvae_elbo(model, x, y, eps)[2] for y in labels], 1)\n"
                             "        return ll - torch.logsumexp(ll, 1, keepdim=True)\n"),
        },
    },
    "09": {
        "ex1_quantize": {
            "library": ("def quantize(z_e, codebook):\n"
                        "    from vae_core.vqvae import nearest_codes\n"
                        "    b, d, h, w = z_e.shape\n"
                        "    codes = nearest_codes(z_e.detach().permute(0, 2, 3, 1).reshape(-1, d), codebook.detach()).view(b, h, w)\n"
                        "    q = codebook[codes].permute(0, 3, 1, 2)\n"
                        "    return z_e + (q - z_e).detach(), codes\n"),
        },
        "ex2_ema_update": {
            "library": ("def ema_update(z, codes, counts, sums, decay, epsilon):\n"
                        "    from vae_core.vqvae import VectorQuantizerEMA\n"
                        "    vq = VectorQuantizerEMA(counts.shape[0], z.shape[1], decay=decay).to(z.dtype).train()\n"
                        "    vq.epsilon = epsilon\n"
                        "    vq.ema_counts.copy_(counts)\n"
                        "    vq.ema_sums.copy_(sums)\n"
                        "    vq._ema_update(z.T.reshape(1, z.shape[1], -1, 1), codes.view(1, -1, 1))\n"
                        "    return vq.ema_counts.clone(), vq.ema_sums.clone(), vq.codebook.clone()\n"),
        },
        "ex3_code_usage": {
            "library": ("def code_usage(codes, K):\n"
                        "    from vae_core.vqvae import dead_codes, perplexity\n"
                        "    return float(perplexity(codes, K)), int(dead_codes(codes, K).sum())\n"),
        },
        "ex4_sample_codes": {
            # the prior's own sampler where there is one (the test's toy prior has none)
            "library sampler": ("def sample_codes(prior, u):\n"
                                "    if hasattr(prior, 'sample'):\n"
                                "        return prior.sample(u.shape[0], generator=torch.Generator().manual_seed(0))\n"
                                "    n, h, w = u.shape\n"
                                "    codes = torch.zeros(n, h, w, dtype=torch.long)\n"
                                "    with torch.no_grad():\n"
                                "        for i in range(h):\n"
                                "            for j in range(w):\n"
                                "                cdf = torch.softmax(prior(codes)[:, :, i, j], 1).cumsum(1)\n"
                                "                codes[:, i, j] = (cdf <= u[:, i, j, None]).sum(1).clamp(max=cdf.shape[1] - 1)\n"
                                "    return codes\n"),
        },
    },
    "10": {
        "ex1_hierarchical_elbo": {
            "library": ("def hierarchical_elbo(model, x, eps2, eps1):\n"
                        "    t = model.elbo(x, eps2=eps2, eps1=eps1)\n"
                        "    return t.recon, t.kl['kl_1'], t.kl['kl_2']\n"),
        },
        "ex2_ancestral_sample": {
            "library": ("def ancestral_sample(model, eps2, eps1):\n"
                        "    return model.sample(eps2.shape[0], z2=eps2, generator=torch.Generator().manual_seed(0))\n"),
        },
        "ex3_mog_log_prob": {
            "torch.distributions": ("def mog_log_prob(z, means, logvars, logits):\n"
                                    "    import torch.distributions as D\n"
                                    "    comp = D.Independent(D.Normal(means, torch.exp(0.5 * logvars)), 1)\n"
                                    "    return D.MixtureSameFamily(D.Categorical(logits=logits), comp).log_prob(z)\n"),
        },
        "ex4_prior_holes": {
            "library": ("def prior_holes(z, log_p, mu, logvar):\n"
                        "    from vae_core.priors import aggregate_log_prob\n"
                        "    gap = log_p - aggregate_log_prob(mu, logvar, z)\n"
                        "    return float(gap.mean()), float((gap > math.log(10.0)).double().mean())\n"),
        },
    },
    "11": {
        "ex1_anomaly_scores": {
            "library": ("def anomaly_scores(model, x, eps):\n"
                        "    nll = -model.log_likelihood(x, k=eps.shape[0], generator=torch.Generator().manual_seed(0))\n"
                        "    t = model.elbo(x)\n"
                        "    return t.recon + t.kl, nll, t.recon\n"),
        },
        "ex2_auroc": {
            "scikit-learn": ("def auroc(normal, anomalous):\n"
                             "    from sklearn.metrics import roc_auc_score\n"
                             "    y = np.r_[np.zeros(len(normal)), np.ones(len(anomalous))]\n"
                             "    return float(roc_auc_score(y, torch.cat([normal, anomalous]).numpy()))\n"),
            "library": ("def auroc(normal, anomalous):\n"
                        "    from vae_core.metrics import roc_auc\n"
                        "    return roc_auc(torch.cat([normal, anomalous]), torch.cat([torch.zeros(len(normal)), torch.ones(len(anomalous))]))\n"),
        },
        "ex4_linear_probe": {
            "scikit-learn": ("def linear_probe(train_f, train_y, test_f, test_y, weight_decay):\n"
                             "    clf = LogisticRegression(C=1 / (weight_decay * len(train_f)), max_iter=10_000, tol=1e-10)\n"
                             "    return float(clf.fit(train_f.numpy(), train_y.numpy()).score(test_f.numpy(), test_y.numpy()))\n"),
        },
    },
    "12": {
        "ex1_masked_nll": {
            "cross_entropy": ("def masked_sequence_nll(logits, targets, lengths):\n"
                              "    import torch.nn.functional as F\n"
                              "    ce = F.cross_entropy(logits.transpose(1, 2), targets, reduction='none')\n"
                              "    return (ce * (torch.arange(logits.shape[1])[None] < lengths[:, None])).sum(1)\n"),
            "library": ("def masked_sequence_nll(logits, targets, lengths):\n"
                        "    from vae_core.sequence import sequence_nll\n"
                        "    return sequence_nll(logits, targets, lengths)\n"),
        },
        "ex2_word_dropout": {
            "library": ("def word_dropout(inputs, rate, generator):\n"
                        "    from vae_core import sequence\n"
                        "    return sequence.word_dropout(inputs, rate, generator)\n"),
        },
        "ex3_greedy_decode": {
            "library": ("def greedy_decode(model, z, max_len):\n"
                        "    return model.generate(z, greedy=True, max_len=max_len)\n"),
        },
        "ex4_moses_metrics": {
            "library": ("def moses_metrics(samples, train_set):\n"
                        "    from vae_core import chem\n"
                        "    return {'validity': chem.validity(samples), 'uniqueness': chem.uniqueness(samples),\n"
                        "            'novelty': chem.novelty(samples, train_set)}\n"),
        },
    },
    "13": {
        "ex3_linear_gaussian_gap": {
            "distributions": ("def linear_gaussian_gap(x, a, b, s2, m, v):\n"
                              "    import torch.distributions as D\n"
                              "    lp = D.Normal(b, (a ** 2 + s2).sqrt()).log_prob(x)\n"
                              "    post = D.Normal(a * (x - b) / (a ** 2 + s2), (s2 / (a ** 2 + s2)).sqrt())\n"
                              "    kl = D.kl_divergence(D.Normal(m, v.sqrt()), post)\n"
                              "    return lp, lp - kl, kl\n"),
        },
        "ex4_iwae_curve": {
            "logsumexp": ("def iwae_curve(log_w, ks):\n"
                          "    return torch.stack([(log_w[: len(log_w) // k * k].view(-1, k).logsumexp(1) - math.log(k)).mean()\n"
                          "                        for k in ks])\n"),
        },
        "ex5_pathwise_grads": {
            # a correct surrogate-loss trick, but autograd does the derivative the drill asks for
            "autograd": ("def pathwise_grads(df, mu, sigma, eps):\n"
                         "    mu, sigma = mu.detach().requires_grad_(), sigma.detach().requires_grad_()\n"
                         "    z = mu + sigma * eps\n"
                         "    return torch.autograd.grad((df(z.detach()) * z).mean(), (mu, sigma))\n"),
        },
        "ex6_reparameterize": {
            "rsample": ("def reparameterize(mu, logvar, generator):\n"
                        "    return torch.distributions.Normal(mu, (0.5 * logvar).exp()).rsample()\n"),
        },
        "ex7_vae_loss": {
            "bce": ("def vae_loss(logits, x, mu, logvar):\n"
                    "    import torch.nn.functional as F\n"
                    "    rec = F.binary_cross_entropy_with_logits(logits, x, reduction='none').sum(1)\n"
                    "    return (rec + 0.5 * (mu ** 2 + logvar.exp() - logvar - 1).sum(1)).mean()\n"),
        },
        "ex8_slerp": {
            "library": ("def slerp(z0, z1, t):\n"
                        "    from vae_core import latent\n"
                        "    return latent.slerp(z0, z1, len(t))\n"),
        },
        "ex9_vq_quantize": {
            "library": ("def vq_quantize(z_e, codebook, beta=0.25):\n"
                        "    from vae_core.vqvae import nearest_codes\n"
                        "    codes = nearest_codes(z_e, codebook)\n"
                        "    e = codebook[codes]\n"
                        "    loss = ((z_e.detach() - e) ** 2).sum(1).mean() + beta * ((z_e - e.detach()) ** 2).sum(1).mean()\n"
                        "    return z_e + (e - z_e).detach(), codes, loss\n"),
        },
    },
}
CASES = [(lesson, ex, name) for lesson, exs in VARIANTS.items() for ex, names in exs.items() for name in names]


@pytest.mark.slow
@pytest.mark.notebooks
@pytest.mark.parametrize("number", sorted(VARIANTS))
def test_shortcut_variants_lose_their_exercise_and_only_it(tmp_path, number):
    lesson = resolve_lesson(number, h.REPO)[0]
    solution = nbformat.read(lesson.solution, as_version=4)
    course = h.make_course(tmp_path, lesson)
    honest = h.answer_exercises(course.release, solution)
    submissions, expected = {}, {}
    for n, (exercise, name) in enumerate((ex, nm) for ls, ex, nm in CASES if ls == number):
        nb = nbformat.from_dict(honest)
        (cell,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == exercise]
        cell.source = VARIANTS[number][exercise][name]
        student = f"variant{n}"
        submissions[student] = nb
        expected[student] = (h.graded_cell_after(solution, exercise), f"{exercise}: {name}")
    graded = h.autograde(course, submissions)
    for student, (test_id, what) in expected.items():
        g = graded[student]
        lost = {gid for gid, (score, _) in g.scores.items() if score == 0}
        assert lost == {test_id}, f"{what}: lost {sorted(lost)}, expected only {test_id}; errors: {g.errors}"
        assert "asks you to write" in g.errors[test_id] or "spread" in g.errors[test_id], g.errors[test_id][-500:]
