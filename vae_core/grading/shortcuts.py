"""Catch an answer that calls the implementation the exercise asks the learner to write.

A test cell wraps the learner's call::

    from vae_core.grading.shortcuts import forbid
    with forbid("logsumexp"):
        out = logsumexp(x, dim=1)

and the block raises :class:`ShortcutError` ("this exercise asks you to write logsumexp yourself;
your answer called torch.Tensor.logsumexp") when the answer used a forbidden implementation,
**whatever the alias**: a method on a tensor, ``torch.special``, ``torch.nn.functional``,
``torch.ops.aten``, a reference captured under another name before the test ran, or a function of
``vae_core`` or ``torch.distributions``. Two detectors run while the block runs:

- a ``TorchFunctionMode`` sees every torch operation by the name of what was called, however it was
  reached (an alias is the same builtin, and torch asks the mode before running it);
- a profile hook (``sys.setprofile``) sees every Python function entered, by its code's module and
  name (``vae_core.losses.kl_diag_gaussians``).

It runs inside the learner's kernel, so it is a check with a clear message, not a guarantee (code
that switches torch function modes or the profiler off can get past it; the static scan reports
such code). Importing this module does nothing beyond importing torch.
"""
from __future__ import annotations

import contextlib
import sys
from typing import Iterator

import torch
from torch.overrides import TorchFunctionMode

# What an exercise may not call, by exercise name: torch operation names (as torch reports them:
# torch.logsumexp, Tensor.logsumexp and torch.ops.aten.logsumexp all report "logsumexp";
# torch.special.logsumexp reports "special_logsumexp"), and Python functions as "module:function".
FORBIDDEN: dict[str, dict[str, frozenset[str]]] = {
    "logsumexp": {
        "torch": frozenset({"logsumexp", "special_logsumexp", "logcumsumexp", "_logcumsumexp"}),
        "python": frozenset({"vae_core.losses:iwae_bound", "vae_core.losses:log_mean_exp",
                             "scipy.special._logsumexp:logsumexp"}),
    },
    # lesson 00's exercise 3 builds on exercise 1's logsumexp (torch's is that exercise's business, not this one's)
    "log_mean_exp": {
        "torch": frozenset(),
        "python": frozenset({"vae_core.losses:iwae_bound", "vae_core.models:log_likelihood"}),
    },
    "softplus": {
        "torch": frozenset({"softplus", "logaddexp"}),
        "python": frozenset(),
    },
    "bernoulli_log_prob": {
        "torch": frozenset({"softplus", "logaddexp", "log_sigmoid", "binary_cross_entropy_with_logits",
                            "binary_cross_entropy"}),
        "python": frozenset({"vae_core.losses:bernoulli_log_prob", "torch.distributions.bernoulli:log_prob"}),
    },
    "ppca_log_marginal": {
        "torch": frozenset(),
        "python": frozenset({"torch.distributions.multivariate_normal:log_prob",
                             "torch.distributions.lowrank_multivariate_normal:log_prob"}),
    },
    "pca_fit": {
        "torch": frozenset(),
        "python": frozenset({"torch._lowrank:pca_lowrank", "sklearn.decomposition._pca:fit",
                             "sklearn.decomposition._pca:fit_transform", "sklearn.decomposition._pca:_fit"}),
    },
    "sample_code_gaussian": {
        "torch": frozenset({"cov", "corrcoef"}),
        "python": frozenset({"torch.distributions.multivariate_normal:__init__", "torch.distributions.multivariate_normal:rsample",
                             "torch.distributions.multivariate_normal:sample", "numpy.lib._function_base_impl:cov",
                             "numpy.lib.function_base:cov"}),
    },
    "pca_reconstruct": {
        "torch": frozenset(),
        "python": frozenset({"sklearn.decomposition._base:transform", "sklearn.decomposition._base:inverse_transform"}),
    },
    "ppca_elbo": {
        "torch": frozenset(),
        "python": frozenset({"torch.distributions.kl:kl_divergence", "vae_core.losses:kl_standard_normal",
                             "vae_core.losses:kl_diag_gaussians", "vae_core.losses:elbo"}),
    },
    "reconstruction_loss": {
        "torch": frozenset(),
        "python": frozenset({"vae_core.losses:bernoulli_log_prob", "vae_core.losses:gaussian_log_prob",
                             "vae_core.models:reconstruction_error"}),
    },
    "z_score": {
        "torch": frozenset(),
        "python": frozenset({"scipy.stats._stats_py:ttest_1samp", "scipy.stats._stats_py:ttest_rel",
                             "scipy.stats._stats_py:ttest_ind"}),
    },
    "reparameterize": {
        "torch": frozenset(),
        "python": frozenset({"vae_core.models:reparameterize", "vae_core.reference:reparameterize",
                             "torch.distributions.normal:rsample", "torch.distributions.independent:rsample",
                             "torch.distributions.multivariate_normal:rsample"}),
    },
    "vae_loss": {
        "torch": frozenset({"binary_cross_entropy_with_logits", "binary_cross_entropy", "mse_loss", "kl_div"}),
        "python": frozenset({"vae_core.losses:elbo", "vae_core.losses:kl_standard_normal",
                             "vae_core.losses:kl_diag_gaussians", "vae_core.losses:bernoulli_log_prob",
                             "vae_core.models:elbo", "torch.distributions.kl:kl_divergence"}),
    },
    # lesson 04
    "my_vae": {
        "torch": frozenset(),
        # the library's VAE (its layers, passes and bounds), its losses and torch.distributions' densities and KL
        "python": frozenset({"vae_core.models:__init__", "vae_core.models:build_model", "vae_core.models:_mlp",
                             "vae_core.models:forward", "vae_core.models:encode", "vae_core.models:decode",
                             "vae_core.models:reparameterize", "vae_core.models:elbo", "vae_core.models:loss_terms",
                             "vae_core.models:log_px_given_z", "vae_core.models:log_likelihood",
                             "vae_core.reference:elbo", "vae_core.reference:encode", "vae_core.reference:decode",
                             "vae_core.losses:elbo", "vae_core.losses:kl_standard_normal", "vae_core.losses:kl_diag_gaussians",
                             "vae_core.losses:bernoulli_log_prob", "vae_core.losses:log_normal_diag",
                             "vae_core.losses:log_normal_std", "torch.distributions.kl:kl_divergence",
                             "torch.distributions.bernoulli:log_prob", "torch.distributions.normal:log_prob",
                             "torch.distributions.independent:log_prob", "torch.distributions.normal:rsample",
                             "torch.distributions.independent:rsample"}),
    },
    "train_epochs": {
        "torch": frozenset(),
        "python": frozenset({"vae_core.train:fit", "vae_core.train:evaluate", "vae_core.train:_epoch",
                             "vae_core.train:_loss_terms", "vae_core.train:_batches"}),
    },
    "direction_rates": {
        "torch": frozenset(),
        "python": frozenset({"vae_core.diagnostics:linear_gaussian_rates"}),
    },
    "lerp": {
        "torch": frozenset({"lerp"}),
        "python": frozenset({"vae_core.latent:lerp", "vae_core.latent:interpolate"}),
    },
    "prior_mass_within": {
        "torch": frozenset(),
        "python": frozenset({"torch.distributions.gamma:cdf", "torch.distributions.chi2:cdf",
                             "scipy.stats._distn_infrastructure:cdf"}),
    },
    "slerp": {
        "torch": frozenset(),
        "python": frozenset({"vae_core.latent:slerp", "vae_core.latent:interpolate"}),
    },
    "path_step_sizes": {
        "torch": frozenset(),
        "python": frozenset({"vae_core.latent:path_smoothness"}),
    },
    "kl_diag_gaussians": {
        "torch": frozenset(),
        "python": frozenset({"vae_core.losses:kl_diag_gaussians", "vae_core.losses:kl_standard_normal",
                             "vae_core.losses:elbo", "torch.distributions.kl:kl_divergence"}),
    },
    # lesson 06
    "rate_distortion_point": {
        "torch": frozenset(),
        "python": frozenset({"vae_core.diagnostics:rate_distortion", "vae_core.diagnostics:rate_distortion_per_example",
                             "vae_core.diagnostics:kl_per_dim", "vae_core.diagnostics:_kl_per_dim",
                             "vae_core.diagnostics:beta_sweep", "vae_core.losses:elbo", "vae_core.losses:kl_standard_normal",
                             "vae_core.losses:kl_diag_gaussians", "vae_core.models:elbo", "vae_core.models:loss_terms",
                             "vae_core.train:evaluate", "torch.distributions.kl:kl_divergence"}),
    },
    "active_units": {
        "torch": frozenset(),
        "python": frozenset({"vae_core.metrics:active_units", "vae_core.diagnostics:__call__"}),
    },
    "kl_weight": {
        "torch": frozenset(),
        "python": frozenset({"vae_core.train:kl_weight"}),
    },
    # lesson 07
    "beta_vae_loss": {
        "torch": frozenset(),
        "python": frozenset({"vae_core.losses:elbo", "vae_core.losses:kl_standard_normal", "vae_core.losses:kl_diag_gaussians",
                             "vae_core.losses:bernoulli_log_prob", "vae_core.models:elbo", "vae_core.models:loss_terms",
                             "vae_core.diagnostics:rate_distortion_per_example", "vae_core.diagnostics:kl_per_dim",
                             "vae_core.diagnostics:_kl_per_dim", "torch.distributions.kl:kl_divergence"}),
    },
    "traverse_latent": {
        "torch": frozenset(),
        "python": frozenset({"vae_core.latent:traverse", "vae_core.latent:to_images", "vae_core.latent:decode_grid",
                             "vae_core.plots:traversal_grid", "vae_core.models:reconstruct"}),
    },
    "mutual_information": {
        "torch": frozenset(),
        "python": frozenset({"vae_core.disentanglement:mutual_info_matrix", "vae_core.disentanglement:discrete_entropy",
                             "vae_core.disentanglement:mig_report", "vae_core.disentanglement:mig",
                             "sklearn.metrics.cluster._supervised:mutual_info_score",
                             "sklearn.metrics.cluster._supervised:normalized_mutual_info_score",
                             "sklearn.metrics.cluster._supervised:adjusted_mutual_info_score",
                             "scipy.stats._entropy:entropy"}),
    },
    "mig_score": {
        "torch": frozenset(),
        # the mutual information itself is exercise 3's: a borrowed one loses that exercise, not this one too
        "python": frozenset({"vae_core.disentanglement:mig", "vae_core.disentanglement:mig_report",
                             "vae_core.disentanglement:normalized_gap", "vae_core.disentanglement:discrete_entropy",
                             "vae_core.disentanglement:discretize"}),
    },
    "free_bits": {
        "torch": frozenset(),
        "python": frozenset({"vae_core.losses:elbo", "vae_core.losses:kl_standard_normal", "vae_core.losses:kl_diag_gaussians",
                             "vae_core.diagnostics:kl_per_dim", "vae_core.diagnostics:_kl_per_dim",
                             "vae_core.models:elbo", "vae_core.reference:elbo", "torch.distributions.kl:kl_divergence"}),
    },
    # lesson 08
    "cond_vae": {
        "torch": frozenset(),
        # the library's CVAE and its building blocks, however wrapped
        "python": frozenset({"vae_core.cvae:__init__", "vae_core.cvae:encode", "vae_core.cvae:decode", "vae_core.cvae:forward",
                             "vae_core.cvae:one_hot", "vae_core.cvae:reparameterize", "vae_core.cvae:sample_with",
                             "vae_core.models:__init__", "vae_core.models:forward", "vae_core.models:_mlp",
                             "vae_core.models:reparameterize"}),
    },
    "cvae_elbo": {
        "torch": frozenset(),
        "python": frozenset({"vae_core.cvae:elbo", "vae_core.cvae:loss_terms", "vae_core.cvae:log_likelihood",
                             "vae_core.models:elbo", "vae_core.models:loss_terms", "vae_core.models:log_px_given_z",
                             "vae_core.losses:elbo", "vae_core.losses:kl_standard_normal", "vae_core.losses:kl_diag_gaussians",
                             "vae_core.losses:bernoulli_log_prob", "torch.distributions.kl:kl_divergence"}),
    },
    "fit_probe": {
        "torch": frozenset(),
        "python": frozenset({"sklearn.linear_model._logistic:fit", "sklearn.linear_model._logistic:_logistic_regression_path",
                             "sklearn.linear_model._stochastic_gradient:fit"}),
    },
    "label_posterior": {
        "torch": frozenset(),
        # the ELBO itself is exercise 2's: a borrowed one loses that exercise, not this one too
        "python": frozenset({"vae_core.cvae:elbo", "vae_core.cvae:loss_terms", "vae_core.cvae:log_likelihood",
                             "vae_core.metrics:nll_estimate", "vae_core.models:log_likelihood"}),
    },
    # lesson 09
    "quantize": {
        "torch": frozenset(),
        "python": frozenset({"vae_core.vqvae:nearest_codes", "vae_core.vqvae:assign", "vae_core.vqvae:lookup",
                             "vae_core.vqvae:forward", "vae_core.vqvae:quantize", "vae_core.vqvae:codes"}),
    },
    "ema_update": {
        "torch": frozenset(),
        "python": frozenset({"vae_core.vqvae:_ema_update", "vae_core.vqvae:forward"}),
    },
    "code_usage": {
        "torch": frozenset(),
        "python": frozenset({"vae_core.vqvae:perplexity", "vae_core.vqvae:dead_codes", "vae_core.vqvae:code_counts",
                             "scipy.stats._entropy:entropy", "vae_core.disentanglement:discrete_entropy"}),
    },
    "sample_codes": {
        "torch": frozenset(),
        # the prior's own forward is what the loop calls; its ready-made sampler is off limits
        "python": frozenset({"vae_core.vqvae:sample"}),
    },
    "hierarchical_elbo": {
        "torch": frozenset(),
        # the library's HVAE passes and the closed-form KLs; the model's own layers are what the answer calls
        "python": frozenset({"vae_core.hierarchical:elbo", "vae_core.hierarchical:posteriors",
                             "vae_core.hierarchical:_top_down", "vae_core.hierarchical:_bottom_up",
                             "vae_core.hierarchical:loss_terms", "vae_core.hierarchical:log_likelihood",
                             "vae_core.losses:elbo", "vae_core.losses:kl_standard_normal", "vae_core.losses:kl_diag_gaussians",
                             "vae_core.losses:bernoulli_log_prob", "torch.distributions.kl:kl_divergence"}),
    },
    "ancestral_sample": {
        "torch": frozenset(),
        "python": frozenset({"vae_core.hierarchical:sample", "vae_core.models:sample"}),
    },
    "mog_log_prob": {
        "torch": frozenset(),
        # torch.logsumexp is allowed (lesson 00 wrote it); the ready-made densities are not
        "python": frozenset({"vae_core.priors:log_prob", "vae_core.priors:aggregate_log_prob", "vae_core.priors:prior_log_prob",
                             "vae_core.priors:_mixture_log_prob",
                             "vae_core.losses:log_normal_diag", "vae_core.losses:log_normal_std",
                             "torch.distributions.mixture_same_family:log_prob", "torch.distributions.normal:log_prob",
                             "torch.distributions.independent:log_prob",
                             "torch.distributions.multivariate_normal:log_prob"}),
    },
    "prior_holes": {
        "torch": frozenset(),
        "python": frozenset({"vae_core.priors:prior_gap", "vae_core.priors:aggregate_log_prob", "vae_core.priors:log_prob",
                             "vae_core.priors:_mixture_log_prob",
                             "vae_core.losses:log_normal_diag", "torch.distributions.mixture_same_family:log_prob",
                             "torch.distributions.normal:log_prob", "torch.distributions.independent:log_prob"}),
    },
    "anomaly_scores": {
        "torch": frozenset(),
        # the model's encode/decode are what the answer calls; its ready-made bounds and densities are not
        "python": frozenset({"vae_core.models:elbo", "vae_core.models:log_likelihood", "vae_core.models:loss_terms",
                             "vae_core.models:log_px_given_z", "vae_core.models:reconstruct", "vae_core.models:log_prior",
                             "vae_core.metrics:nll_estimate", "vae_core.losses:elbo", "vae_core.losses:iwae_bound",
                             "vae_core.losses:log_mean_exp", "vae_core.losses:bernoulli_log_prob",
                             "vae_core.losses:log_normal_diag", "vae_core.losses:log_normal_std",
                             "vae_core.losses:kl_standard_normal", "torch.distributions.normal:log_prob",
                             "torch.distributions.bernoulli:log_prob", "torch.distributions.independent:log_prob",
                             "torch.distributions.multivariate_normal:log_prob"}),
    },
    "auroc": {
        "torch": frozenset(),
        "python": frozenset({"vae_core.metrics:roc_auc", "sklearn.metrics._ranking:roc_auc_score",
                             "sklearn.metrics._ranking:_binary_roc_auc_score", "sklearn.metrics._ranking:roc_curve",
                             "sklearn.metrics._ranking:auc", "scipy.stats._mannwhitneyu:mannwhitneyu"}),
    },
    "zlib_bits": {
        "torch": frozenset(),
        "python": frozenset({"vae_core.metrics:png_bits"}),
    },
    "complexity_score": {
        "torch": frozenset(),
        "python": frozenset({"vae_core.metrics:png_bits"}),
    },
    "linear_probe": {
        "torch": frozenset(),
        # the reference the tests compare with, and scikit-learn's other linear classifiers
        "python": frozenset({"sklearn.linear_model._logistic:fit", "sklearn.linear_model._logistic:_logistic_regression_path",
                             "sklearn.linear_model._stochastic_gradient:fit", "sklearn.linear_model._ridge:fit",
                             "sklearn.svm._classes:fit", "sklearn.discriminant_analysis:fit"}),
    },
    "log_weights": {
        "torch": frozenset(),
        # the model's encode/decode are what the answer calls; its ready-made bounds and densities are not
        "python": frozenset({"vae_core.models:elbo", "vae_core.models:log_likelihood", "vae_core.models:loss_terms",
                             "vae_core.models:log_px_given_z", "vae_core.metrics:nll_estimate", "vae_core.losses:elbo",
                             "vae_core.losses:iwae_bound", "vae_core.losses:bernoulli_log_prob",
                             "vae_core.losses:log_normal_diag", "vae_core.losses:log_normal_std",
                             "torch.distributions.normal:log_prob", "torch.distributions.bernoulli:log_prob",
                             "torch.distributions.independent:log_prob"}),
    },
    "kl_split": {
        "torch": frozenset(),
        # the aggregate posterior's log-density and every ready-made Gaussian log-density
        "python": frozenset({"vae_core.priors:aggregate_log_prob", "vae_core.priors:_mixture_log_prob",
                             "vae_core.priors:prior_gap", "vae_core.losses:log_normal_diag",
                             "vae_core.losses:log_normal_std", "torch.distributions.normal:log_prob",
                             "torch.distributions.independent:log_prob",
                             "torch.distributions.mixture_same_family:log_prob",
                             "torch.distributions.multivariate_normal:log_prob"}),
    },
    # lesson 13 (the drills; its whiteboard drills reuse reparameterize, vae_loss, slerp and quantize above)
    "elbo_gap": {
        "torch": frozenset(),
        "python": frozenset({"torch.distributions.normal:log_prob", "torch.distributions.normal:entropy",
                             "torch.distributions.kl:kl_divergence", "torch.distributions.kl:_kl_normal_normal",
                             "vae_core.losses:kl_diag_gaussians", "vae_core.losses:kl_standard_normal",
                             "vae_core.losses:log_normal_diag", "vae_core.losses:log_normal_std",
                             "vae_core.losses:gaussian_log_prob", "vae_core.losses:elbo"}),
    },
    "iwae_curve": {
        "torch": frozenset({"logsumexp", "special_logsumexp", "logcumsumexp", "_logcumsumexp", "logaddexp"}),
        "python": frozenset({"vae_core.losses:iwae_bound", "vae_core.losses:log_mean_exp",
                             "scipy.special._logsumexp:logsumexp"}),
    },
    "pathwise_grads": {
        "torch": frozenset(),
        "python": frozenset({"torch.autograd:grad", "torch.autograd:backward", "torch._tensor:backward",
                             "torch.func._functorch.eager_transforms:grad", "torch._functorch.eager_transforms:grad"}),
    },
    "masked_nll": {
        # the per-token cross-entropy however spelled (F.cross_entropy, F.nll_loss) and the course's own loss
        "torch": frozenset({"cross_entropy", "nll_loss", "cross_entropy_loss", "nll_loss_nd", "nll_loss2d"}),
        "python": frozenset({"vae_core.sequence:sequence_nll", "vae_core.sequence:loss_terms",
                             "torch.distributions.categorical:log_prob"}),
    },
    "word_dropout": {
        "torch": frozenset(),
        "python": frozenset({"vae_core.sequence:word_dropout"}),
    },
    "greedy_decode": {
        "torch": frozenset(),
        # model.decode is what the answer calls; the model's own decoding loops are not
        "python": frozenset({"vae_core.sequence:generate", "vae_core.sequence:sample_strings",
                             "vae_core.sequence:reconstruct_strings"}),
    },
    "moses_metrics": {
        "torch": frozenset(),
        "python": frozenset({"vae_core.chem:validity", "vae_core.chem:uniqueness", "vae_core.chem:novelty",
                             "vae_core.chem:summary", "vae_core.chem:canonical", "vae_core.chem:canonical_set",
                             "vae_core.chem:is_valid", "vae_core.chem:reconstruction_accuracy",
                             "vae_core.chem:_canonical", "vae_core.chem:_canonical_list", "vae_core.chem:_figures"}),
    },
}


class ShortcutError(AssertionError):
    """The answer called the implementation the exercise asks the learner to write."""


def _op_name(func) -> str:
    name = getattr(func, "__name__", "") or ""
    return name.split(".")[0]  # "logsumexp.default" (an aten OpOverload) -> "logsumexp"


class _Recorder(TorchFunctionMode):
    def __init__(self, names: frozenset[str], hits: list[str]):
        super().__init__()
        self.names, self.hits = names, hits

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if _op_name(func) in self.names:
            self.hits.append(f"torch's {_op_name(func)} (however it is spelled: a tensor method, torch.special, "
                             "torch.nn.functional or another name for it are the same function)")
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def forbid(*exercises: str) -> Iterator[list[str]]:
    """Raise :class:`ShortcutError` at the end of the block if the code in it called what the named
    exercises (keys of :data:`FORBIDDEN`) ask the learner to write. Yields the list of hits."""
    unknown = [e for e in exercises if e not in FORBIDDEN]
    if unknown:
        raise ValueError(f"no shortcut list for {unknown}; known exercises: {sorted(FORBIDDEN)}")
    torch_names = frozenset().union(*(FORBIDDEN[e]["torch"] for e in exercises))
    python_names = frozenset().union(*(FORBIDDEN[e]["python"] for e in exercises))
    hits: list[str] = []

    def profile(frame, event, arg):
        if event == "call":
            code = frame.f_code
            key = f"{frame.f_globals.get('__name__', '?')}:{code.co_name}"
            if key in python_names:
                hits.append(key.replace(":", "."))
        return None

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        with _Recorder(torch_names, hits):
            yield hits
    finally:
        sys.setprofile(previous)
    if hits:
        what = " and ".join(exercises)
        raise ShortcutError(
            f"this exercise asks you to write {what} yourself, but your answer called {hits[0]}. "
            "Build it from the basic operations the lesson describes (the library's version is what "
            "the tests compare against)."
        )


def forbidding(exercise: str, fn):
    """``fn`` (the learner's answer) wrapped so that every call runs under ``forbid(exercise)``::

        _slerp = forbidding("slerp", slerp)   # in a test cell: _slerp(a, b, 5) refuses vae_core.latent.slerp
    """
    if exercise not in FORBIDDEN:
        raise ValueError(f"no shortcut list for {exercise!r}; known exercises: {sorted(FORBIDDEN)}")
    if not callable(fn):
        raise ValueError(f"forbidding({exercise!r}, fn) needs the function to check, got {type(fn).__name__}")

    def checked(*args, **kwargs):
        with forbid(exercise):
            return fn(*args, **kwargs)

    checked.__name__ = checked.__qualname__ = getattr(fn, "__name__", exercise)
    checked.__doc__ = getattr(fn, "__doc__", None)
    return checked


def check_spread(samples: torch.Tensor, reference: torch.Tensor, low: float = 0.8, high: float = 1.25,
                 what: str = "estimates") -> None:
    """Raise ``AssertionError`` unless the standard deviation of ``samples`` is within
    ``[low, high]`` times that of ``reference`` (both ``(R, ...)``, compared entry by entry).

    A Monte Carlo estimator is judged on its spread as well as its mean: the closed form plus a
    little noise has the right mean and far too small a spread.
    """
    s = samples.detach().double().std(dim=0)
    r = reference.detach().double().std(dim=0)
    ratio = s / r
    if not bool(((ratio >= low) & (ratio <= high)).all()):
        raise AssertionError(
            f"the spread of your {what} is {ratio.min().item():.3g}-{ratio.max().item():.3g} times that of a "
            f"plain Monte Carlo estimator with the same number of samples (expected {low}-{high}); an estimate "
            "that is (nearly) exact or reuses samples is not a Monte Carlo estimate: draw fresh z ~ q each call"
        )
