"""Data for the course, all offline: bundled MNIST, scikit-learn's 8 x 8 digits, procedural
sprites with known factors, bundled MOSES molecules as SMILES strings (``molecules``), a corpus of
sentences generated from a small English grammar (``text``), and ``Batches``, a fast mini-batch
iterator over in-memory tensors.

    from vae_core.data import load_mnist, Batches
    train = load_mnist("train", binarize="dynamic")
    for x, y in Batches.from_dataset(train, batch_size=128, seed=0):   # one epoch
        ...

    from vae_core.data import load_smiles, load_sentences
    smiles = load_smiles("train")        # 50,000 SMILES strings (str)
    sentences = load_sentences("train")  # 20,000 sentences, e.g. "the cats sleep in the garden ."

Importing this package reads no file (and does not import RDKit); the arrays and SMILES are read
(and checksummed) on first load.
"""
from . import molecules, ood, sprites, text
from .batches import Batches
from .dataset import Dataset, bernoulli_binarize, load_dataset, static_binarize
from .digits import load_digits
from .mnist import DATA_DIR_ENV, load_mnist, mnist_arrays, verify_mnist
from .molecules import load_smiles
from .sprites import (
    SPRITE_FACTORS,
    factor_values,
    factors_to_index,
    index_to_factors,
    load_sprites,
    render_sprites,
    sample_sprites,
    sample_with_fixed_factor,
    sprite_grid,
)
from .text import load_sentences

__all__ = [
    "Batches", "Dataset", "load_dataset", "load_mnist", "load_digits", "load_sprites",
    "mnist_arrays", "verify_mnist", "DATA_DIR_ENV", "bernoulli_binarize", "static_binarize",
    "ood", "sprites", "SPRITE_FACTORS", "render_sprites", "sample_sprites", "sample_with_fixed_factor", "sprite_grid",
    "factor_values", "factors_to_index", "index_to_factors",
    "molecules", "load_smiles", "text", "load_sentences",
]
