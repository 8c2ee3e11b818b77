"""Sequence VAEs: a GRU encoder, an autoregressive GRU decoder, and the tokens they read and write.

Bowman et al. (2016) put a VAE around a recurrent language model; Gomez-Bombarelli et al. (2018)
did the same for molecules written as SMILES strings. A string is a token sequence
``x = (x_1, ..., x_L)`` and the decoder is autoregressive given z:

    q(z|x) = N(mu(x), diag exp(logvar(x)))          p(z) = N(0, I)
    p(x|z) = prod_t p(x_t | x_<t, z)                 (teacher forcing when training)
    ELBO(x) = sum_t log p(x_t | x_<t, z) - KL(q(z|x) || p(z)).

::

    train = encode_texts(load_smiles("train"), "smiles")            # SequenceData: (N, T) tokens, lengths
    model = SeqVAE(SeqVAEConfig(vocab=train.vocab.tokens, kind="smiles", word_dropout=0.25))
    fit(model, train, config=TrainConfig(epochs=10, kl_schedule="linear"))   # the one training loop
    model.sample_strings(8, generator=torch.Generator().manual_seed(0))

Every sequence is stored as ``[<bos>, x_1, ..., x_L, <eos>, <pad>, ...]`` with ``lengths = L + 2``.
The decoder reads ``[<bos>, x_1, ..., x_L]`` and predicts ``[x_1, ..., x_L, <eos>]``: ``L + 1``
targets per row, padding never counted (:func:`sequence_nll`). Word dropout (Bowman et al. 2016,
Sec. 3.2) replaces a fraction of the decoder's *input* tokens by ``<unk>`` while training, so the
decoder cannot predict the next token from the previous ones alone and has to read z.

``SeqVAE`` speaks the training protocol (``loss_terms``): ``vae_core.train.fit`` trains it on a
``SequenceData`` (its batches carry ``lengths``), and ``save_checkpoint``/``load_checkpoint``
restore it with its vocabulary. Reduction as everywhere in the course: sum over tokens and latent
dimensions, mean over the batch, in nats.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import losses
from .data.batches import Batch
from .models import LossTerms, LossWeights

__all__ = [
    "SPECIALS", "PAD", "BOS", "EOS", "UNK", "KINDS",
    "tokenize", "detokenize", "tokenize_smiles", "tokenize_selfies", "tokenize_words",
    "Vocab", "SequenceData", "encode_texts",
    "sequence_nll", "word_dropout",
    "SeqVAEConfig", "SeqVAE", "active_units",
]

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD, BOS, EOS, UNK = 0, 1, 2, 3
KINDS = ("smiles", "selfies", "words")

# One SMILES token per match: bracket atoms, two-letter halogens, ring-bond labels, bonds, branches
# (the regular expression of Schwaller et al. 2019, "Molecular Transformer").
_SMILES_TOKEN = re.compile(
    r"(\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|/|:|~|@|\?|>|\*|\$|%[0-9]{2}|[0-9])"
)
_SELFIES_TOKEN = re.compile(r"\[[^\[\]]*\]")


def _check_text(name: str, s: object) -> str:
    if not isinstance(s, str):
        raise ValueError(f"{name} must be a str, got {type(s).__name__}; pass one string at a time")
    return s


def tokenize_smiles(smiles: str) -> list[str]:
    """Split a SMILES string into tokens: ``"CC(=O)Cl"`` -> ``['C', 'C', '(', '=', 'O', ')', 'Cl']``.

    ``Cl`` and ``Br`` are one token each, a bracket atom such as ``[nH]`` or ``[C@@H]`` is one token,
    ``%12`` is one ring-bond label. Raises ``ValueError`` on a character no SMILES token covers.
    """
    smiles = _check_text("smiles", smiles)
    tokens = _SMILES_TOKEN.findall(smiles)
    if "".join(tokens) != smiles:
        pos = 0
        for t in tokens:  # find the first character the tokens skipped
            if smiles.startswith(t, pos):
                pos += len(t)
            else:
                break
        raise ValueError(f"{smiles!r} is not a SMILES string: no token matches at position {pos} "
                         f"({smiles[pos:pos + 5]!r}); expected atoms, bonds, branches and ring labels")
    return tokens


def tokenize_selfies(selfies: str) -> list[str]:
    """Split a SELFIES string into its bracketed symbols: ``"[C][=O]"`` -> ``['[C]', '[=O]']``."""
    selfies = _check_text("selfies", selfies)
    tokens = _SELFIES_TOKEN.findall(selfies)
    if "".join(tokens) != selfies:
        raise ValueError(f"{selfies!r} is not a SELFIES string: every symbol is written in brackets, "
                         f"e.g. '[C][=O]'; convert SMILES with vae_core.chem.to_selfies")
    return tokens


def tokenize_words(sentence: str) -> list[str]:
    """Split a sentence on single spaces: ``"the cat sat ."`` -> ``['the', 'cat', 'sat', '.']``."""
    sentence = _check_text("sentence", sentence)
    tokens = sentence.split(" ")
    if any(t == "" for t in tokens):
        raise ValueError(f"{sentence!r} has an empty word (double, leading or trailing space); "
                         f"separate words by single spaces")
    return tokens


_TOKENIZERS = {"smiles": tokenize_smiles, "selfies": tokenize_selfies, "words": tokenize_words}
_JOINERS = {"smiles": "", "selfies": "", "words": " "}


def _check_kind(kind: object) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return kind  # type: ignore[return-value]


def tokenize(text: str, kind: str) -> list[str]:
    """The tokens of ``text`` for ``kind`` in ``("smiles", "selfies", "words")``."""
    return _TOKENIZERS[_check_kind(kind)](text)


def detokenize(tokens: Sequence[str], kind: str) -> str:
    """Inverse of :func:`tokenize`: ``detokenize(tokenize(s, kind), kind) == s``."""
    return _JOINERS[_check_kind(kind)].join(tokens)


@dataclass(frozen=True)
class Vocab:
    """Token <-> id. Ids 0-3 are ``<pad>``, ``<bos>``, ``<eos>``, ``<unk>``; the rest sorted."""

    tokens: tuple[str, ...]
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tokens = tuple(self.tokens)
        if tokens[: len(SPECIALS)] != SPECIALS or len(set(tokens)) != len(tokens):
            raise ValueError(f"a Vocab's tokens start with {SPECIALS} and hold no duplicates, got {tokens[:8]}...; "
                             f"build one with Vocab.build(token_lists)")
        object.__setattr__(self, "tokens", tokens)
        object.__setattr__(self, "index", {t: i for i, t in enumerate(tokens)})

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]]) -> "Vocab":
        """The vocabulary of every token in ``token_lists`` (the specials first, then sorted)."""
        seen = {t for toks in token_lists for t in toks}
        clash = seen & set(SPECIALS)
        if clash:
            raise ValueError(f"the data holds the reserved tokens {sorted(clash)}")
        return cls(SPECIALS + tuple(sorted(seen)))

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Token ids of ``tokens`` (an unknown token becomes ``<unk>``), without ``<bos>``/``<eos>``."""
        return [self.index.get(t, UNK) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens of ``ids`` up to the first ``<eos>``; ``<bos>`` and ``<pad>`` are skipped."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i in (BOS, PAD):
                continue
            if not 0 <= i < len(self.tokens):
                raise ValueError(f"token id {i} is outside this vocabulary of {len(self.tokens)}")
            out.append(self.tokens[i])
        return out


@dataclass
class SequenceData:
    """Token sequences in memory, the sequence counterpart of ``vae_core.data.Dataset``.

    tokens:  ``(N, T)`` long, each row ``[<bos>, x_1, ..., x_L, <eos>, <pad>, ...]``.
    lengths: ``(N,)`` long, ``L + 2`` (``<bos>`` and ``<eos>`` included).
    texts:   the N strings the rows encode.
    vocab, kind: how they were tokenized.
    """

    tokens: Tensor
    lengths: Tensor
    texts: list[str]
    vocab: Vocab
    kind: str

    def __post_init__(self) -> None:
        if not (isinstance(self.tokens, Tensor) and self.tokens.dim() == 2 and self.tokens.dtype == torch.long):
            raise ValueError(f"SequenceData.tokens must be a (N, T) long tensor, got "
                             f"{tuple(self.tokens.shape) if isinstance(self.tokens, Tensor) else type(self.tokens).__name__}")
        n = self.tokens.shape[0]
        if not (isinstance(self.lengths, Tensor) and self.lengths.shape == (n,)):
            raise ValueError(f"SequenceData.lengths must be ({n},) to match tokens {tuple(self.tokens.shape)}")
        if len(self.texts) != n:
            raise ValueError(f"SequenceData has {n} rows but {len(self.texts)} texts")
        _check_kind(self.kind)

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def subset(self, idx: Sequence[int] | Tensor | slice) -> "SequenceData":
        """The rows ``idx`` (a slice, or indices), same vocabulary."""
        if isinstance(idx, slice):
            rows = torch.arange(len(self))[idx]
        else:
            rows = torch.as_tensor(idx, dtype=torch.long)
        texts = [self.texts[i] for i in rows.tolist()]
        return SequenceData(self.tokens[rows], self.lengths[rows], texts, self.vocab, self.kind)


def encode_texts(texts: Sequence[str], kind: str, vocab: Vocab | None = None, max_len: int | None = None) -> SequenceData:
    """Tokenize ``texts`` and pad them into a :class:`SequenceData`.

    vocab:   the vocabulary to use (the training set's, for a test set); None builds one from ``texts``.
    max_len: longest sequence allowed, in tokens without ``<bos>``/``<eos>``; a longer one raises
             ``ValueError`` (None: no limit).
    """
    kind = _check_kind(kind)
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise ValueError(f"texts must be a list of strings, got {type(texts).__name__}")
    if len(texts) == 0:
        raise ValueError("texts is empty; pass at least one string")
    token_lists = [tokenize(t, kind) for t in texts]
    vocab = Vocab.build(token_lists) if vocab is None else vocab
    if not isinstance(vocab, Vocab):
        raise ValueError(f"vocab must be a Vocab or None, got {type(vocab).__name__}")
    longest = max(len(t) for t in token_lists)
    if max_len is not None and longest > max_len:
        i = max(range(len(token_lists)), key=lambda k: len(token_lists[k]))
        raise ValueError(f"text {i} has {longest} tokens, more than max_len={max_len}: {texts[i]!r}")
    tokens = torch.full((len(texts), longest + 2), PAD, dtype=torch.long)
    lengths = torch.empty(len(texts), dtype=torch.long)
    for i, toks in enumerate(token_lists):
        ids = [BOS, *vocab.encode(toks), EOS]
        tokens[i, : len(ids)] = torch.tensor(ids)
        lengths[i] = len(ids)
    return SequenceData(tokens, lengths, list(texts), vocab, kind)


# ----------------------------------------------------------------------------------------------
# the loss and word dropout


def sequence_nll(logits: Tensor, targets: Tensor, lengths: Tensor) -> Tensor:
    """Masked reconstruction loss: ``-sum_{t < lengths[b]} log softmax(logits[b, t])[targets[b, t]]``.

    logits:  ``(B, T, V)`` next-token scores; targets ``(B, T)`` long; lengths ``(B,)``: how many
    leading positions of each row count (the rest is padding and never counted).
    Returns ``(B,)`` nats per sequence (summed over its tokens, not averaged).
    """
    if not (isinstance(logits, Tensor) and logits.dim() == 3):
        raise ValueError(f"logits must be (B, T, V), got {tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__}")
    b, t, _ = logits.shape
    if not (isinstance(targets, Tensor) and targets.shape == (b, t)):
        raise ValueError(f"targets must be (B, T) = {(b, t)} to match logits, got "
                         f"{tuple(targets.shape) if isinstance(targets, Tensor) else type(targets).__name__}")
    if not (isinstance(lengths, Tensor) and lengths.shape == (b,)):
        raise ValueError(f"lengths must be ({b},), got {tuple(lengths.shape) if isinstance(lengths, Tensor) else type(lengths).__name__}")
    mask = torch.arange(t, device=logits.device)[None, :] < lengths[:, None].to(logits.device)  # (B, T)
    nll = F.cross_entropy(logits.reshape(b * t, -1), targets.reshape(-1).clamp(min=0), reduction="none").view(b, t)
    return (nll * mask).sum(dim=1)


def word_dropout(inputs: Tensor, rate: float, generator: torch.Generator | None = None) -> Tensor:
    """Replace each real token of the decoder's ``inputs`` (B, T) by ``<unk>`` with probability ``rate``.

    ``<bos>``, ``<eos>`` and ``<pad>`` are never replaced (Bowman et al. 2016, Sec. 3.2).
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"word dropout rate must lie in [0, 1], got {rate!r}")
    if rate == 0.0:
        return inputs
    u = torch.rand(inputs.shape, generator=generator, device=inputs.device)
    drop = (u < rate) & (inputs > UNK)
    return inputs.masked_fill(drop, UNK)


# ----------------------------------------------------------------------------------------------
# the model


@dataclass
class SeqVAEConfig:
    """A sequence VAE; vary it with ``dataclasses.replace``."""

    # Every token the model reads and writes, specials first (``SequenceData.vocab.tokens``).
    vocab: tuple[str, ...]
    # How strings become tokens: "smiles", "selfies" or "words".
    kind: str = "smiles"
    # Token embedding size (shared by encoder and decoder).
    embed_dim: int = 32
    # GRU state size of the encoder and of the decoder.
    hidden_dim: int = 128
    # D, the size of z.
    latent_dim: int = 32
    # Fraction of decoder inputs replaced by <unk> while training (Bowman et al. 2016); 0 turns it off.
    word_dropout: float = 0.0
    # Longest sequence decoding writes, in tokens (without <bos>/<eos>).
    max_len: int = 100

    def __post_init__(self) -> None:
        self.vocab = tuple(self.vocab)
        Vocab(self.vocab)  # checks the specials
        _check_kind(self.kind)
        for name in ("embed_dim", "hidden_dim", "latent_dim", "max_len"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"SeqVAEConfig.{name} must be a positive int, got {v!r}")
        if not 0.0 <= float(self.word_dropout) < 1.0:
            raise ValueError(f"SeqVAEConfig.word_dropout must lie in [0, 1), got {self.word_dropout!r}")


class SeqVAE(nn.Module):
    """GRU encoder -> (mu, logvar) -> z -> autoregressive GRU decoder that sees z at every step.

    encode(tokens, lengths)  -> mu, logvar (B, D): the encoder GRU's state after ``<eos>``
    decode(z, inputs)        -> logits (B, T, V) for the next token at each input position
    loss_terms(batch, weights): the training protocol (``batch.x`` tokens, ``batch.lengths``)
    generate(z, greedy=...)  -> token ids; sample_strings / reconstruct_strings -> strings
    """

    def __init__(self, config: SeqVAEConfig) -> None:
        super().__init__()
        if not isinstance(config, SeqVAEConfig):
            raise ValueError(f"SeqVAE takes a SeqVAEConfig, got {type(config).__name__}")
        self.config = config
        self.vocab = Vocab(config.vocab)
        v, e, h, d = len(config.vocab), config.embed_dim, config.hidden_dim, config.latent_dim
        self.embed = nn.Embedding(v, e, padding_idx=PAD)
        self.encoder_rnn = nn.GRU(e, h, batch_first=True)
        self.to_stats = nn.Linear(h, 2 * d)
        self.z_to_h = nn.Linear(d, h)
        self.decoder_rnn = nn.GRU(e + d, h, batch_first=True)
        self.out = nn.Linear(h, v)

    # -- the parts -------------------------------------------------------------------------------
    def _check_tokens(self, tokens: Tensor, lengths: Tensor) -> None:
        if not (isinstance(tokens, Tensor) and tokens.dim() == 2 and tokens.dtype == torch.long):
            raise ValueError(f"tokens must be a (B, T) long tensor of token ids, got "
                             f"{tuple(tokens.shape) if isinstance(tokens, Tensor) else type(tokens).__name__}"
                             f"{'' if not isinstance(tokens, Tensor) else ' ' + str(tokens.dtype)}")
        if not (isinstance(lengths, Tensor) and lengths.shape == tokens.shape[:1]):
            raise ValueError(f"lengths must be ({tokens.shape[0]},) to match tokens {tuple(tokens.shape)}; "
                             f"batches of SequenceData carry them (batch.lengths)")
        if tokens.numel() and (int(tokens.max()) >= len(self.vocab) or int(tokens.min()) < 0):
            raise ValueError(f"token ids must lie in [0, {len(self.vocab)}) for this model's vocabulary, got "
                             f"[{int(tokens.min())}, {int(tokens.max())}]; encode the data with the model's vocab "
                             f"(encode_texts(texts, kind, vocab=model.vocab))")
        if int(lengths.min()) < 2 or int(lengths.max()) > tokens.shape[1]:
            raise ValueError(f"lengths must lie in [2, {tokens.shape[1]}] (<bos> and <eos> included), got "
                             f"[{int(lengths.min())}, {int(lengths.max())}]")

    def encode(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """q(z|x): tokens (B, T), lengths (B,) -> mu, logvar (B, D)."""
        self._check_tokens(tokens, lengths)
        states, _ = self.encoder_rnn(self.embed(tokens))  # (B, T, H); position t has read tokens <= t
        last = states[torch.arange(tokens.shape[0], device=tokens.device), lengths.to(tokens.device) - 1]
        mu, logvar = self.to_stats(last).chunk(2, dim=-1)
        return mu, logvar

    @staticmethod
    def reparameterize(mu: Tensor, logvar: Tensor) -> Tensor:
        """z = mu + sigma * eps, eps ~ N(0, I)."""
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def decode(self, z: Tensor, inputs: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """p(x_t | x_<t, z): z (B, D), inputs (B, T) token ids -> (logits (B, T, V), final GRU state).

        ``state`` None starts from ``tanh(W z)``; pass the returned state to continue a sequence.
        """
        if state is None:
            state = torch.tanh(self.z_to_h(z))[None]  # (1, B, H)
        emb = self.embed(inputs)  # (B, T, E)
        zs = z[:, None, :].expand(-1, inputs.shape[1], -1)
        states, state = self.decoder_rnn(torch.cat([emb, zs], dim=-1), state)
        return self.out(states), state

    # -- the training protocol ------------------------------------------------------------------
    def loss_terms(self, batch: Batch, weights: LossWeights = LossWeights()) -> LossTerms:
        """-ELBO with teacher forcing: ``recon`` = masked NLL of ``[x_1..x_L, <eos>]``, ``kl`` closed form."""
        if batch.lengths is None:
            raise ValueError("SeqVAE needs batch.lengths (B,); train it on a SequenceData (encode_texts), "
                             "whose batches carry them")
        lengths = batch.lengths.to(batch.x.device)
        tokens = batch.x[:, : int(lengths.max())]  # drop the padding no row of this batch needs
        mu, logvar = self.encode(tokens, lengths)
        z = self.reparameterize(mu, logvar)
        inputs, targets = tokens[:, :-1], tokens[:, 1:]
        if self.training and self.config.word_dropout > 0:
            inputs = word_dropout(inputs, self.config.word_dropout)
        logits, _ = self.decode(z, inputs)
        recon = sequence_nll(logits, targets, lengths - 1)  # (B,), L + 1 targets per row
        kl_per_dim = -0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp())  # (B, D)
        kl = kl_per_dim.sum(dim=-1)
        if weights.free_bits > 0:  # sum_j max(lambda, E_x[KL_j])   (Kingma et al. 2016)
            kl_for_loss = torch.clamp(kl_per_dim.mean(dim=0), min=weights.free_bits).sum()
        else:
            kl_for_loss = kl.mean()
        loss = recon.mean() + weights.kl * kl_for_loss
        return LossTerms(loss, {"recon": recon, "kl": kl}, -recon - kl)

    # -- decoding -------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, z: Tensor, greedy: bool = True, temperature: float = 1.0,
                 generator: torch.Generator | None = None, max_len: int | None = None) -> list[list[int]]:
        """Decode each z (B, D) one token at a time from ``<bos>`` until ``<eos>`` (or ``max_len`` tokens).

        greedy: take the most likely token (deterministic); else sample from softmax(logits / temperature)
        with ``generator``. Returns B lists of token ids, ``<bos>``/``<eos>`` excluded.
        """
        if not (isinstance(z, Tensor) and z.dim() == 2 and z.shape[1] == self.config.latent_dim):
            raise ValueError(f"z must be (B, {self.config.latent_dim}), got "
                             f"{tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__}")
        if not greedy and not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        max_len = self.config.max_len if max_len is None else max_len
        b = z.shape[0]
        token = torch.full((b, 1), BOS, dtype=torch.long, device=z.device)
        done = torch.zeros(b, dtype=torch.bool, device=z.device)
        state, out = None, []
        for _ in range(max_len + 1):
            logits, state = self.decode(z, token, state)
            logits = logits[:, -1]
            logits[:, [PAD, BOS, UNK]] = float("-inf")  # never written
            if greedy:
                nxt = logits.argmax(dim=-1)
            else:
                probs = torch.softmax(logits / temperature, dim=-1)
                nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            nxt = nxt.masked_fill(done, EOS)
            out.append(nxt)
            done |= nxt == EOS
            if bool(done.all()):
                break
            token = nxt[:, None]
        ids = torch.stack(out, dim=1).tolist()
        return [row[: row.index(EOS)] if EOS in row else row[:max_len] for row in ids]

    def to_strings(self, ids: list[list[int]]) -> list[str]:
        """Token ids -> strings (joined as the model's ``kind`` writes them)."""
        return [detokenize(self.vocab.decode(row), self.config.kind) for row in ids]

    @torch.no_grad()
    def sample_strings(self, n: int, generator: torch.Generator | None = None, greedy: bool = False,
                       temperature: float = 1.0) -> list[str]:
        """Draw z ~ N(0, I) (from ``generator``) and decode n strings (sampled tokens unless ``greedy``)."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        p = next(self.parameters())
        z = torch.randn(n, self.config.latent_dim, generator=generator, device=p.device, dtype=p.dtype)
        return self.to_strings(self.generate(z, greedy=greedy, temperature=temperature, generator=generator))

    @torch.no_grad()
    def encode_strings(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """mu, logvar (B, D) of ``texts`` (tokenized with the model's vocabulary)."""
        data = encode_texts(texts, self.config.kind, vocab=self.vocab)
        p = next(self.parameters())
        return self.encode(data.tokens.to(p.device), data.lengths.to(p.device))

    @torch.no_grad()
    def reconstruct_strings(self, texts: Sequence[str]) -> list[str]:
        """Greedy decoding of each text's posterior mean: the model's best guess of the text back."""
        mu, _ = self.encode_strings(texts)
        return self.to_strings(self.generate(mu, greedy=True))


@torch.no_grad()
def active_units(model: SeqVAE, data: SequenceData, threshold: float = 0.01, batch_size: int = 500) -> tuple[int, Tensor]:
    """Active latent units (Burda et al. 2016): ``A_j = Var_x(mu_j(x)) > threshold``; returns (count, A)."""
    if not isinstance(data, SequenceData) or len(data) < 2:
        raise ValueError("active_units needs a SequenceData with at least 2 sequences")
    was = model.training
    model.eval()
    p = next(model.parameters())
    mus = []
    for i in range(0, len(data), batch_size):
        tokens, lengths = data.tokens[i:i + batch_size], data.lengths[i:i + batch_size]
        tokens = tokens[:, : int(lengths.max())]
        mus.append(model.encode(tokens.to(p.device), lengths.to(p.device))[0].double().cpu())
    model.train(was)
    a = torch.cat(mus).var(dim=0, correction=0).float()
    return int((a > threshold).sum()), a


from .train import register_model  # noqa: E402  (train imports models, never this module: no cycle)

register_model(SeqVAE, SeqVAEConfig)
