"""The border band: a VQ autoencoder trained briefly on crops has no frame artefact.

`border_ratio` (frame error / interior error) mixes two things: content that happens to sit
near the edges and an artefact of being the edge (padding, how a caller pads). `frame_effect`
separates them: the same pixels coded alone and inside a larger picture. See docs/vq.md.
"""

import torch

from hdc_lightning.evaluation.diagnostics import border_ratio, frame_effect
from hdc_lightning.models.vq import VQModel
from tests.helpers.images import synthetic_image
from tests.helpers.models import toy_vq

FACTOR = 1.10  # frame error alone ≤ FACTOR × the same pixels' error with real context around them


def _trained(padding_mode: str, steps: int = 120) -> VQModel:
    """The report's setting in miniature: f16, zero padding, random 64² crops (4×4 tokens,
    every one of them at a crop edge), L1 + codebook + commitment losses."""
    torch.manual_seed(0)
    model = toy_vq(lookup_dim=8, restart_after=20, padding_mode=padding_mode)
    data = synthetic_image(128, 128, seed=1, style="photo", n=32)
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    for _ in range(steps):
        i, j = torch.randint(0, 65, (2,)).tolist()
        x = data[torch.randint(0, 32, (8,))][:, :, i : i + 64, j : j + 64]
        out = model(x)
        loss = (out.x_hat - x).abs().mean() + out.codebook_loss + out.commit_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def test_no_frame_artefact_after_a_short_training_on_crops():
    model = _trained("zeros")
    big = synthetic_image(256, 320, seed=2, style="photo", n=4)  # 16×20 tokens: larger than any training crop

    @torch.no_grad()
    def reconstruct(x):
        return model(x).x_hat

    effect = frame_effect(reconstruct, big, margin=32, band=16)
    assert effect <= FACTOR, f"the frame comes out {effect:.2f}× worse than the same pixels with context"

    def striped(x):  # the same codec with the report's artefact: black stripes along every edge
        y = reconstruct(x).clone()
        y[..., 0:8:2, :] = y[..., -8::2, :] = 0  # horizontal at the top and bottom
        y[..., :, 0:8:2] = y[..., :, -8::2] = 0  # vertical at the sides
        return y

    assert frame_effect(striped, big, margin=32, band=16) > 1.3
    # border_ratio alone cannot tell content from artefact: on this picture the frame holds
    # harder content, so it flags a band that frame_effect shows is not the codec's doing.
    assert border_ratio(big, reconstruct(big).clamp(0, 1), band=16) > FACTOR
