"""The packed (unpadded) text path of babel-lite computes what transformers' BertModel computes.

Speed is measured outside the tests (see docs/babel-lite.md); here only correctness: the packed
forward against the tower's own ``forward`` + mean pooling, on a tiny random BERT (fast, covers
LoRA layers and odd masks) and on the real mE5-small weights (mixed scripts and lengths).
"""
from __future__ import annotations

import pytest
import torch

from babelclip.models.babel_lite.text_tower import TextEncoder, TextPreprocess, mean_pool
from babelclip.models.packed_bert import can_pack, packed_mean_embeddings, pad_batch


def _tiny_bert(seed: int = 0):
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=40, pad_token_id=1)
    return BertModel(cfg, add_pooling_layer=False).eval()


def _reference(tower, batch, mask):
    """transformers' own forward, then mean pooling over the mask: what the packed path must equal."""
    return mean_pool(tower(input_ids=batch, attention_mask=mask).last_hidden_state, mask)


def _random_ids(lengths, vocab=97, pad=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = []
    for n in lengths:
        x = torch.randint(2, vocab, (n,), generator=g).tolist()
        ids.append(x)
    return pad_batch(ids, pad)


def test_pad_batch_right_pads_and_masks():
    batch, mask = pad_batch([[5, 6, 7], [8]], pad=1)
    assert batch.tolist() == [[5, 6, 7], [8, 1, 1]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]


@pytest.mark.parametrize("lengths", [[7], [3, 9, 1, 12, 5], [4, 4, 4]])
def test_packed_equals_bert_forward_on_tiny_model(lengths):
    tower = _tiny_bert()
    batch, mask = _random_ids(lengths)
    with torch.inference_mode():
        ref = _reference(tower, batch, mask)
        got = packed_mean_embeddings(tower, batch, mask)
    # A different padding width must not change a text's embedding either (padding is inert).
    wider = torch.cat([batch, torch.ones(len(lengths), 5, dtype=torch.long)], 1)
    wmask = torch.cat([mask, torch.zeros(len(lengths), 5, dtype=torch.long)], 1)
    with torch.inference_mode():
        got_wide = packed_mean_embeddings(tower, wider, wmask)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got_wide, ref, atol=1e-5, rtol=1e-5)


def test_packed_path_respects_lora_layers_injected_in_the_tower():
    peft = pytest.importorskip("peft")
    tower = _tiny_bert()
    batch, mask = _random_ids([6, 2, 9])
    with torch.inference_mode():
        plain = packed_mean_embeddings(tower, batch, mask)
    cfg = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value", "dense"], init_lora_weights=False)
    wrapped = peft.get_peft_model(tower, cfg).eval()  # injects LoRA into ``tower`` in place
    with torch.inference_mode():
        assert can_pack(tower)
        ref = _reference(tower, batch, mask)
        got = packed_mean_embeddings(tower, batch, mask)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    assert (got - plain).abs().max() > 1e-3  # the non-zero LoRA update really took part
    with wrapped.disable_adapter(), torch.inference_mode():
        torch.testing.assert_close(packed_mean_embeddings(tower, batch, mask), plain, atol=1e-6, rtol=1e-6)


def test_can_pack_only_for_inference_on_an_encoder_bert():
    tower = _tiny_bert()
    with torch.inference_mode():
        assert can_pack(tower)
    assert not can_pack(tower)  # autograd on: training keeps transformers' forward
    with torch.no_grad():
        tower.train()
        assert not can_pack(tower)
        tower.eval()
        assert not can_pack(torch.nn.Linear(2, 2))


class _Tok:
    """Stands in for ``tokenizers.Tokenizer``: a text's ids are its characters' codes (mod vocab)."""

    class _E:
        def __init__(self, ids):
            self.ids = ids

    def encode_batch(self, texts):
        return [self._E([0] + [2 + ord(c) % 90 for c in t] + [2]) for t in texts]


def test_embed_dispatches_and_keeps_input_order():
    tower = _tiny_bert()
    texts = ["a long text with many characters", "ab", "", "medium text", "x" * 20]
    enc = TextEncoder(tower, _Tok(), TextPreprocess(prefix="q: ", chunk=2))
    ids = enc.tokenize(texts)
    calls = []
    tower.register_forward_hook(lambda *a: calls.append(1))
    with torch.inference_mode():
        packed = enc.embed(texts)
    assert not calls  # inference ran the packed path, not BertModel.forward
    with torch.no_grad():
        ref = torch.cat([_reference(tower, *pad_batch([x], 1)) for x in ids])
    torch.testing.assert_close(packed, ref, atol=1e-5, rtol=1e-5)
    with torch.enable_grad():
        slow = enc.embed(texts)
    assert calls  # with autograd on, the tower's own forward ran
    torch.testing.assert_close(slow.detach(), ref, atol=1e-5, rtol=1e-5)


def test_real_weights_packed_equals_tower_forward():
    """mE5-small as shipped: labels of mixed scripts and lengths, one chunk of padding-heavy rows."""
    from babelclip.models.babel_lite.text_tower import load_tokenizer, load_tower

    tower, tok = load_tower(), load_tokenizer()
    enc = TextEncoder(tower, tok)
    texts = ["tench", "一只猫", "Donaudampfschifffahrtsgesellschaftskapitän und Kaffeetasse", "",
             "सफ़ेद शार्क", "a photo of a golden retriever.", "ゴールデン・レトリバー"]
    batch, mask = pad_batch(enc.tokenize(texts), tower.config.pad_token_id)
    assert len(set(mask.sum(1).tolist())) > 4  # really mixed lengths
    with torch.inference_mode():
        ref = _reference(tower, batch, mask)
        got = enc.embed(texts)
    cos = torch.nn.functional.cosine_similarity(got, ref, dim=-1)
    assert cos.min() > 1 - 1e-6
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-4)


def test_fused_qkv_follows_weight_changes():
    """The fused query/key/value weight is rebuilt when any of the three changes in place."""
    tower = _tiny_bert(seed=3)
    batch, mask = _random_ids([5, 3, 7], seed=3)
    with torch.no_grad():
        first = packed_mean_embeddings(tower, batch, mask)
        assert "_babelclip_qkv" in tower.encoder.layer[0].attention.self.__dict__  # the fused path ran
        tower.encoder.layer[1].attention.self.value.weight.mul_(-2.0)
        second = packed_mean_embeddings(tower, batch, mask)
        ref = _reference(tower, batch, mask)
    torch.testing.assert_close(second, ref, atol=1e-5, rtol=1e-5)
    assert (second - first).abs().max() > 1e-3  # the change mattered, and was not served stale
