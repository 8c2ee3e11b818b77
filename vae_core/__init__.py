"""vae_core: the small, tested PyTorch library behind the VAE course.

Importing it does nothing: no downloads, no prints, no argument parsing. Modules:

- ``vae_core.data``     bundled MNIST, sklearn digits, procedural sprites, MOSES SMILES, grammar sentences,
  a fast batch iterator
- ``vae_core.losses``   KL terms, log-likelihoods, the ELBO and the importance-weighted bound
- ``vae_core.models``   MLP / conv encoders and decoders, the ``VAE`` and its config
- ``vae_core.train``    one plain PyTorch loop for every model (``loss_terms``), KL schedules, checkpoints
- ``vae_core.sequence`` tokenizers, the masked sequence loss, word dropout, the GRU sequence VAE and its decoding
- ``vae_core.chem``     RDKit and SELFIES helpers, validity / uniqueness / novelty (imports RDKit only when called)
- ``vae_core.latent``   lerp, slerp, traversals, 2-D manifold grids
- ``vae_core.metrics``  active units, NLL in nats and bits/dim, ROC AUC
- ``vae_core.diagnostics``  rate and distortion, KL per dimension, active units during training, beta sweeps
- ``vae_core.disentanglement``  MIG (mutual information gap) and its pieces, for the sprites' factors
- ``vae_core.plots``    figures (each function returns a matplotlib ``Figure``)
- ``vae_core.config``   quick mode (``VAE_COURSE_QUICK=1``)
"""
from pathlib import Path

from .config import QUICK_ENV, pick, quick_mode

__version__ = "0.1.0"
# Shipped model checkpoints (state_dict + config); lessons load one when present, else train.
CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
__all__ = ["CHECKPOINT_DIR", "QUICK_ENV", "pick", "quick_mode", "get_device", "seed_everything", "__version__"]


def __getattr__(name: str):
    # seed_everything and get_device need torch; importing it lazily keeps `import vae_core` (and
    # every `vae-course` command, which never trains) free of torch's ~2 s start-up.
    if name in ("get_device", "seed_everything"):
        from . import utils

        return getattr(utils, name)
    raise AttributeError(f"module 'vae_core' has no attribute {name!r}")
