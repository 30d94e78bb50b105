"""Attention fusion: weights sum to 1 over present modalities, never weight a missing one, any subset works."""

import itertools

import pytest
import torch

from stresslab.fusion import MODALITIES, AttentionFusion


def test_every_nonempty_subset():
    torch.manual_seed(0)
    fusion = AttentionFusion(16).eval()
    subsets = [s for r in (1, 2, 3) for s in itertools.combinations(range(3), r)]
    mask = torch.zeros(len(subsets), len(MODALITIES), dtype=torch.bool)
    for i, s in enumerate(subsets):
        mask[i, list(s)] = True
    emb = torch.randn(len(subsets), 3, 16)
    out = fusion(emb, mask)
    torch.testing.assert_close(out.weights.sum(1), torch.ones(len(subsets)))
    assert torch.all(out.weights[~mask] == 0)
    for i, s in enumerate(subsets):
        if len(s) == 1:
            torch.testing.assert_close(out.fused[i], emb[i, s[0]])


def test_missing_embedding_values_do_not_leak():
    fusion = AttentionFusion(8)
    mask = torch.tensor([[True, False, True]])
    emb = torch.randn(1, 3, 8)
    other = emb.clone()
    other[0, 1] = 1e6
    torch.testing.assert_close(fusion(emb, mask).fused, fusion(other, mask).fused)


def test_empty_row_is_an_error():
    with pytest.raises(ValueError, match="at least one"):
        AttentionFusion(4)(torch.randn(1, 3, 4), torch.zeros(1, 3, dtype=torch.bool))
