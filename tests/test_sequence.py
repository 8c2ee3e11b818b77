"""vae_core.sequence: tokenizers, the masked sequence loss, word dropout, the sequence VAE and its decoding."""
from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vae_core.data.batches import Batch
from vae_core.models import LossWeights
from vae_core.sequence import (
    BOS, EOS, PAD, SPECIALS, UNK, SeqVAE, SeqVAEConfig, SequenceData, Vocab, active_units, detokenize,
    encode_texts, sequence_nll, tokenize, tokenize_selfies, tokenize_smiles, tokenize_words, word_dropout,
)
from vae_core.train import TrainConfig, evaluate, fit, load_checkpoint, save_checkpoint

SMILES = ["CCO", "c1ccccc1Cl", "CC(=O)N[C@@H](C)C(=O)O", "Brc1ccc2[nH]ccc2c1", "C%12CC%12", "O=S(=O)(O)c1ccccc1"]


def small_model(data: SequenceData, **kw) -> SeqVAE:
    torch.manual_seed(0)
    return SeqVAE(SeqVAEConfig(vocab=data.vocab.tokens, kind=data.kind, embed_dim=8, hidden_dim=16, latent_dim=4, **kw))


def test_smiles_tokens_split_atoms_bonds_and_rings():
    assert tokenize_smiles("CC(=O)Cl") == ["C", "C", "(", "=", "O", ")", "Cl"]
    assert tokenize_smiles("Brc1ccc2[nH]ccc2c1")[:3] == ["Br", "c", "1"]
    assert "[C@@H]" in tokenize_smiles("N[C@@H](C)C") and "%12" in tokenize_smiles("C%12CC%12")
    for s in SMILES:
        assert detokenize(tokenize(s, "smiles"), "smiles") == s


def test_tokenizers_refuse_what_they_cannot_split():
    with pytest.raises(ValueError, match="position 2"):
        tokenize_smiles("CCä")
    with pytest.raises(ValueError, match="brackets"):
        tokenize_selfies("[C]O")
    with pytest.raises(ValueError, match="empty word"):
        tokenize_words("the  cat")
    with pytest.raises(ValueError, match="str"):
        tokenize_smiles(["CCO"])
    assert tokenize_selfies("[C][=O][Branch1]") == ["[C]", "[=O]", "[Branch1]"]
    assert tokenize_words("the cat sat .") == ["the", "cat", "sat", "."]


def test_vocab_puts_specials_first_and_maps_unknown_tokens_to_unk():
    v = Vocab.build([["C", "O"], ["Cl", "C"]])
    assert v.tokens[:4] == SPECIALS and v.tokens[4:] == ("C", "Cl", "O")
    assert v.encode(["C", "Br"]) == [4, UNK]
    assert v.decode([BOS, 4, 6, EOS, 5]) == ["C", "O"]  # stops at <eos>
    with pytest.raises(ValueError, match="reserved"):
        Vocab.build([["<eos>"]])


def test_encode_texts_pads_after_eos_and_counts_bos_and_eos():
    data = encode_texts(["CCO", "C"], "smiles")
    c, o = data.vocab.index["C"], data.vocab.index["O"]
    assert data.tokens.tolist() == [[BOS, c, c, o, EOS], [BOS, c, EOS, PAD, PAD]]
    assert data.lengths.tolist() == [5, 3]
    test = encode_texts(["CN"], "smiles", vocab=data.vocab)  # N unseen: <unk>
    assert test.tokens.tolist() == [[BOS, c, UNK, EOS]]
    with pytest.raises(ValueError, match="max_len=2"):
        encode_texts(["CCO"], "smiles", max_len=2)
    with pytest.raises(ValueError, match="list of strings"):
        encode_texts("CCO", "smiles")


def test_sequence_nll_matches_a_hand_computation_and_ignores_padding():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 7, generator=g)
    targets = torch.randint(0, 7, (3, 5), generator=g)
    lengths = torch.tensor([5, 2, 0])
    expected = []
    for b in range(3):
        total = 0.0
        for t in range(int(lengths[b])):
            row = logits[b, t].double()
            total += -(row[targets[b, t]] - torch.log(torch.exp(row).sum())).item()
        expected.append(total)
    got = sequence_nll(logits, targets, lengths)
    assert got.shape == (3,)
    assert torch.allclose(got.double(), torch.tensor(expected, dtype=torch.double), atol=1e-5)
    garbage = logits.clone()
    garbage[1, 2:] = 1e3 * torch.randn(3, 7, generator=g)  # what lies past a row's length never counts
    assert torch.allclose(sequence_nll(garbage, targets, lengths), got)
    with pytest.raises(ValueError, match="targets"):
        sequence_nll(logits, targets[:, :4], lengths)


def test_word_dropout_replaces_only_real_tokens_at_the_given_rate():
    g = torch.Generator().manual_seed(0)
    inputs = torch.randint(UNK + 1, 20, (200, 50), generator=g)
    inputs[:, 0] = BOS
    inputs[:, 40:] = PAD
    assert torch.equal(word_dropout(inputs, 0.0), inputs)
    all_dropped = word_dropout(inputs, 1.0)
    assert (all_dropped[:, 1:40] == UNK).all() and (all_dropped[:, 0] == BOS).all() and (all_dropped[:, 40:] == PAD).all()
    half = word_dropout(inputs, 0.3, generator=g)
    frac = (half[:, 1:40] == UNK).float().mean().item()
    assert abs(frac - 0.3) < 0.01, frac  # 7800 draws: sd 0.005
    with pytest.raises(ValueError, match="rate"):
        word_dropout(inputs, 1.5)


def test_decoder_is_causal_and_the_encoder_reads_nothing_past_the_length():
    data = encode_texts(SMILES, "smiles")
    model = small_model(data).eval()
    z = torch.randn(1, 4)
    inputs = data.tokens[:1, :-1].clone()
    logits, _ = model.decode(z, inputs)
    changed = inputs.clone()
    changed[0, 3] = data.vocab.index["O"] if inputs[0, 3] != data.vocab.index["O"] else data.vocab.index["C"]
    logits2, _ = model.decode(z, changed)
    assert torch.allclose(logits[0, :3], logits2[0, :3])  # positions before 3 cannot see token 3
    assert not torch.allclose(logits[0, 3:], logits2[0, 3:])  # the test can fail: later positions do see it
    short = data.tokens[1:2].clone()  # "c1ccccc1Cl" padded to the longest row
    n = int(data.lengths[1])
    mu, _ = model.encode(short, data.lengths[1:2])
    short[0, n:] = data.vocab.index["C"]  # junk where the padding was
    assert torch.allclose(model.encode(short, data.lengths[1:2])[0], mu)


def test_loss_terms_are_the_masked_nll_and_the_gaussian_kl():
    data = encode_texts(SMILES, "smiles")
    model = small_model(data).eval()
    torch.manual_seed(1)
    out = model.loss_terms(Batch(data.tokens, lengths=data.lengths), LossWeights(kl=0.5))
    mu, logvar = model.encode(data.tokens, data.lengths)
    ref_kl = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1)
    assert torch.allclose(out.terms["kl"], ref_kl, atol=1e-5)
    torch.manual_seed(1)
    z = model.reparameterize(mu, logvar)
    logits, _ = model.decode(z, data.tokens[:, :-1])
    recon = sequence_nll(logits, data.tokens[:, 1:], data.lengths - 1)
    assert torch.allclose(out.terms["recon"], recon, atol=1e-5)
    assert torch.allclose(out.elbo, -recon - ref_kl, atol=1e-5)
    assert math.isclose(out.loss.item(), (recon + 0.5 * ref_kl).mean().item(), rel_tol=1e-5)
    with pytest.raises(ValueError, match="lengths"):
        model.loss_terms(Batch(data.tokens), LossWeights())
    with pytest.raises(ValueError, match="vocabulary"):
        model.encode(data.tokens + 100, data.lengths)


@pytest.mark.slow
def test_fit_trains_a_sequence_vae_whose_batches_carry_lengths(tmp_path):
    texts = ["the cat sat .", "a dog ran .", "the dog sat .", "a cat ran ."] * 50
    data = encode_texts(texts, "words")
    model = small_model(data, word_dropout=0.2)
    before = evaluate(model, data)
    history = fit(model, data, data, TrainConfig(epochs=15, batch_size=32, lr=1e-2, progress=False))
    after = evaluate(model, data)
    assert after["recon"] < 0.5 * before["recon"], (before, after)
    assert len(history.train["recon"]) == 15
    # greedy decoding reproduces a sentence of the corpus; the checkpoint restores model and vocabulary
    path = save_checkpoint(tmp_path / "seq.pt", model)
    loaded, _ = load_checkpoint(path, device="cpu")
    assert isinstance(loaded, SeqVAE) and loaded.vocab == model.vocab
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    assert loaded.generate(z) == model.generate(z)
    assert all(s in set(texts) for s in loaded.reconstruct_strings(texts[:4])), loaded.reconstruct_strings(texts[:4])


def test_generate_stops_at_eos_respects_max_len_and_samples_reproducibly():
    data = encode_texts(SMILES, "smiles")
    model = small_model(data).eval()
    z = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    ids = model.generate(z, max_len=7)
    assert len(ids) == 6 and all(len(row) <= 7 and EOS not in row and BOS not in row for row in ids)
    assert model.generate(z, max_len=7) == ids  # greedy is deterministic
    a = model.sample_strings(4, generator=torch.Generator().manual_seed(3))
    b = model.sample_strings(4, generator=torch.Generator().manual_seed(3))
    assert a == b and all(isinstance(s, str) for s in a)
    model.out.bias.data[EOS] = 1e4  # an output layer that always says <eos> writes empty strings
    assert model.to_strings(model.generate(z)) == [""] * 6


def test_active_units_count_the_means_that_move():
    data = encode_texts(SMILES, "smiles")
    model = small_model(data).eval()
    count, a = active_units(model, data, threshold=0.0)
    assert count == 4 and a.shape == (4,)
    with torch.no_grad():
        model.to_stats.weight[:4] = 0.0  # mu no longer depends on x
    count, a = active_units(model, data, threshold=1e-12)
    assert count == 0


def test_tokenizers_round_trip_the_shipped_data():
    from vae_core.chem import to_selfies
    from vae_core.data import load_sentences, load_smiles

    smiles = [*load_smiles("train"), *load_smiles("test")]
    for s in smiles:  # every shipped molecule splits into tokens that join back to it
        assert detokenize(tokenize_smiles(s), "smiles") == s, s
    selfies = [to_selfies(s) for s in smiles[:500]]
    assert all(detokenize(tokenize_selfies(s), "selfies") == s for s in selfies)
    sentences = load_sentences("test")
    assert all(detokenize(tokenize_words(s), "words") == s for s in sentences)
    # the training vocabulary covers the test set: no test token becomes <unk>
    train = encode_texts(load_smiles("train"), "smiles")
    test = encode_texts(load_smiles("test"), "smiles", vocab=train.vocab)
    assert not (test.tokens == UNK).any()
    assert len(train.vocab) == 27 and int(train.lengths.max()) == 49 + 2
