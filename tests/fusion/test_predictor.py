"""Index predictor T: shapes, gradients, deterministic decoding that keeps sent indices, learnability."""

from __future__ import annotations

import pytest
import torch

from hdc_lightning.models.fusion import IndexPredictor, PredictorOutput, masked_accuracy, masked_cross_entropy
from hdc_lightning.models.masks import MaskPolicy, grid_mask
from hdc_lightning.registry import build


def synthetic_batch(b=4, grid=8, seed=0):
    """Images made of 16×16 cells in one of 8 colours; the index of a cell is its colour id,
    so the indices are learnable from the conditioning image (plus mild noise)."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, 8, (b, grid, grid), generator=g)
    bits = torch.stack([(idx >> k) & 1 for k in range(3)], 1).float()  # [B, 3, h, w]
    img = 0.2 + 0.6 * bits.repeat_interleave(16, 2).repeat_interleave(16, 3)
    img = (img + 0.05 * torch.randn(img.shape, generator=g)).clamp(0, 1)
    return img, idx


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build("model", "predictor", "tiny")


def test_shapes_and_gradients(tiny):
    img, idx = synthetic_batch()
    mask = grid_mask(8, 8, "1/4")
    v = torch.randn(4, 32)
    out = tiny(idx, mask, img, v)
    assert isinstance(out, PredictorOutput) and out.logits.shape == (4, 64, 8, 8)
    loss = masked_cross_entropy(out.logits, idx, mask)
    loss.backward()
    no_grad = [n for n, p in tiny.named_parameters() if p.grad is None]
    assert not no_grad
    # FiLM projections are zero-initialised yet receive a gradient from the first step
    assert all(b.films[0].proj.weight.grad.abs().sum() > 0 for b in tiny.blocks)
    tiny.zero_grad()


def test_only_sent_indices_are_read(tiny):
    img, idx = synthetic_batch()
    mask = grid_mask(8, 8, "1/9")
    scrambled = torch.where(mask, idx, torch.randint(0, 64, idx.shape))
    with torch.no_grad():
        assert torch.equal(tiny(idx, mask, img).logits, tiny(scrambled, mask, img).logits)


def test_any_grid_size_and_bad_inputs(tiny):
    img = torch.rand(1, 3, 96, 160)
    idx = torch.zeros(1, 6, 10, dtype=torch.long)
    with torch.no_grad():
        assert tiny(idx, grid_mask(6, 10, "1/4"), img).logits.shape == (1, 64, 6, 10)
    with pytest.raises(ValueError):
        tiny(idx[:, :5], grid_mask(5, 10, "1/4"), img)  # grid ≠ image/16
    with pytest.raises(ValueError):
        tiny(idx + 64, grid_mask(6, 10, "1/4"), img)  # sent index out of the codebook


@pytest.mark.parametrize("steps", [1, 3])
def test_decode_is_deterministic_and_keeps_sent_indices(tiny, steps):
    img, idx = synthetic_batch()
    masks = MaskPolicy(region=2).training_masks(4, 8, 8, torch.Generator().manual_seed(1))
    tiny.eval()
    v = torch.randn(4, 32)
    a = tiny.decode(idx, masks, img, v, steps=steps)
    torch.manual_seed(99)
    b = tiny.decode(idx, masks, img, v, steps=steps)
    assert torch.equal(a, b)
    assert torch.equal(a[masks], idx[masks])
    assert a.min() >= 0 and a.max() < 64 and a.dtype == torch.long
    full = torch.ones(8, 8, dtype=torch.bool)
    assert torch.equal(tiny.decode(idx, full, img, v, steps=steps), idx)


def test_refinement_commits_in_confidence_order(tiny):
    """With 2 steps, the first step's most confident half is fixed before the second pass."""
    img, idx = synthetic_batch(b=1)
    mask = grid_mask(8, 8, "1/4")
    tiny.eval()
    with torch.no_grad():
        memory = tiny.encode_condition(img)
        tokens = torch.where(mask, idx, torch.full_like(idx, tiny.mask_id))
        conf, pred = tiny.predict(tokens, memory).softmax(1).max(1)
    two = tiny.decode(idx, mask, img, steps=2)
    n_missing = int((~mask).sum())
    n_first = n_missing - int(n_missing * 0.7071067811865476)  # floor(n·cos(π/4)) stay masked
    order = torch.sort(torch.where(mask, -1.0, conf[0]).flatten(), descending=True, stable=True).indices
    first = order[:n_first]
    assert torch.equal(two.flatten(1)[0, first], pred.flatten(1)[0, first])


def test_tiny_predictor_learns_beyond_majority_class():
    torch.manual_seed(0)
    model = IndexPredictor(codebook_size=64, dim=64, depth=2, heads=4, cond_ch=32, drv_dim=32)
    img, idx = synthetic_batch(b=4, grid=8)
    policy = MaskPolicy(region=2)
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(30):
        mask = policy.training_masks(4, 8, 8, gen)
        loss = masked_cross_entropy(model(idx, mask, img).logits, idx, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    mask = grid_mask(8, 8, "1/9")
    with torch.no_grad():
        acc = masked_accuracy(model(idx, mask, img).logits, idx, mask).item()
    decoded = model.decode(idx, mask, img)
    missing = ~mask.expand_as(idx)
    majority = (idx[missing] == idx[missing].mode().values).float().mean().item()
    assert (decoded[missing] == idx[missing]).float().mean().item() == pytest.approx(acc)
    assert acc > majority + 0.25, (acc, majority)


def test_masked_loss_helpers():
    logits = torch.zeros(1, 4, 2, 2, requires_grad=True)
    target = torch.tensor([[[0, 1], [2, 3]]])
    all_sent = torch.ones(2, 2, dtype=torch.bool)
    assert masked_cross_entropy(logits, target, all_sent).item() == 0.0
    assert torch.isnan(masked_accuracy(logits, target, all_sent))
    some = torch.tensor([[True, False], [False, False]])
    assert masked_cross_entropy(logits, target, some).item() == pytest.approx(torch.log(torch.tensor(4.0)).item())


def test_paper_preset_runs_one_forward():
    model = build("model", "predictor", "paper").eval()
    img = torch.rand(1, 3, 128, 128)
    idx = torch.randint(0, 1024, (1, 8, 8))
    mask = grid_mask(8, 8, "1/4")
    out = model.decode(idx, mask, img, torch.randn(1, 256))
    assert out.shape == (1, 8, 8) and torch.equal(out[:, mask], idx[:, mask])
