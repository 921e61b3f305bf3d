"""Masked autoencoder (He, Chen, Xie, Li, Dollár & Girshick, CVPR 2022, arXiv:2111.06377) for our ViT.

Mask a random ``mask_ratio`` of the patches (0.75 in the paper), run the ViT encoder on the
visible ones only (with the class token), then a light Transformer decoder on the encoded
patches plus a shared learned mask token at every masked position, and regress the pixels
of the masked patches: the loss is the mean squared error on masked patches only, against
each patch's pixels normalised by its own mean and standard deviation (the paper's
"normalised pixels" target, §3 and Table 1d). Decoder position embeddings are the fixed 2-D
sine-cosine ones of the reference code.

Written by hand for :class:`cnnlineage.models.vit.VisionTransformer`: the encoder is the
network's own patch embedding (``conv_proj``), ``class_token``, position embeddings and
blocks (``encoder.layers``, ``encoder.ln``), so the pre-trained weights are the network's.
lightly's MAE modules wrap timm's or torchvision's ViT classes, not ours.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..models.vit import _LAYER_NORM, EncoderBlock, VisionTransformer
from ..registry import list_models
from .methods import SSLMethod

__all__ = ["MAE", "mae_loss", "mae_models", "patchify", "random_masking", "sincos_pos_embed"]


def mae_models() -> list[str]:
    """Return the registered models MAE can pre-train: the ViT family."""
    return list_models(family="vit")


def patchify(images: torch.Tensor, p: int) -> torch.Tensor:
    """Return the P×P patches of images (B, C, H, W) as rows (B, N, P·P·C), in raster order, channels last."""
    b, c, h, w = images.shape
    x = images.reshape(b, c, h // p, p, w // p, p)
    return torch.einsum("nchpwq->nhwpqc", x).reshape(b, (h // p) * (w // p), p * p * c)


def random_masking(
    x: torch.Tensor, ratio: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return (visible tokens (B, L, D), mask (B, N) with 1 = masked, ids_restore (B, N), ids_shuffle (B, N)).

    Each image keeps the ``L = int(N (1 - ratio))`` patches of lowest uniform noise (the
    reference implementation's per-sample shuffle).
    """
    b, n, d = x.shape
    keep = int(n * (1 - ratio))
    noise = torch.rand(b, n, device=x.device)
    ids_shuffle = noise.argsort(dim=1)
    ids_restore = ids_shuffle.argsort(dim=1)
    visible = torch.gather(x, 1, ids_shuffle[:, :keep, None].expand(-1, -1, d))
    mask = torch.ones(b, n, device=x.device)
    mask[:, :keep] = 0
    return visible, torch.gather(mask, 1, ids_restore), ids_restore, ids_shuffle


def mae_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, *, norm_pix: bool = True
) -> torch.Tensor:
    """Return the MSE over masked patches only; ``target`` patches normalised per patch if ``norm_pix``.

    ``pred`` and ``target`` are (B, N, P·P·C), ``mask`` (B, N) with 1 on masked patches. The
    normalisation is the reference code's: (x - mean) / sqrt(var + 1e-6), var unbiased.
    """
    if norm_pix:
        mean, var = target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + 1e-6).sqrt()
    per_patch = (pred - target).pow(2).mean(dim=-1)  # (B, N)
    return (per_patch * mask).sum() / mask.sum()


def sincos_pos_embed(dim: int, grid: tuple[int, int], *, cls_token: bool = True) -> torch.Tensor:
    """Return fixed 2-D sine-cosine position embeddings (1, [1 +] h·w, dim), half the width per axis."""
    if dim % 4:
        raise ValueError(f"sine-cosine position embeddings need a width divisible by 4; got {dim}")
    h, w = grid
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim / 4))  # (dim/4,)
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
    )

    def axis(pos: torch.Tensor) -> torch.Tensor:
        out = pos.reshape(-1)[:, None] * omega[None]  # (h·w, dim/4)
        return torch.cat([out.sin(), out.cos()], dim=1)  # (h·w, dim/2)

    emb = torch.cat([axis(xs), axis(ys)], dim=1).float()  # (h·w, dim): the reference's order, w then h
    if cls_token:
        emb = torch.cat([torch.zeros(1, dim), emb])
    return emb[None]


def _heads(dim: int) -> int:
    """Return attention heads for a decoder of width ``dim``: heads of width 32 (the paper's 512/16), dividing it."""
    h = max(1, dim // 32)
    while dim % h:
        h -= 1
    return h


class MAE(SSLMethod):
    """MAE: the ViT encodes the visible patches; a light decoder reconstructs the masked ones."""

    method = "mae"

    def __init__(
        self,
        backbone: nn.Module,
        *,
        size: tuple[int, int],
        mask_ratio: float,
        decoder_dim: int,
        decoder_depth: int,
    ) -> None:
        if type(backbone) is not VisionTransformer:  # (DeiT's distilled ViT carries a second token)
            name = getattr(backbone, "model_name", "") or type(backbone).__name__
            raise ValueError(
                f"MAE masks the patch tokens of a Vision Transformer; {name} is not one. "
                f"Pick one of {', '.join(mae_models())}, or another method (simclr, moco, byol, dino) for a CNN"
            )
        super().__init__(backbone)
        p = backbone.patch_size
        self.grid = (size[0] // p, size[1] // p)
        n = self.grid[0] * self.grid[1]
        if int(n * (1 - mask_ratio)) < 1 or int(n * (1 - mask_ratio)) == n:
            raise ValueError(
                f"ssl.mask_ratio={mask_ratio} leaves {int(n * (1 - mask_ratio))} of {n} patches visible; "
                "at least one must be visible and one masked"
            )
        if p * p * backbone.in_chans < 2:
            raise ValueError("MAE's normalised-pixel target needs patches of at least 2 values")
        self.mask_ratio = mask_ratio
        width = backbone.hidden_dim
        self.decoder_embed = nn.Linear(width, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.register_buffer("decoder_pos", sincos_pos_embed(decoder_dim, self.grid), persistent=False)
        heads = _heads(decoder_dim)
        self.decoder_blocks = nn.Sequential(
            *[EncoderBlock(decoder_dim, heads, 4 * decoder_dim) for _ in range(decoder_depth)]
        )
        self.decoder_norm = _LAYER_NORM(decoder_dim)
        self.decoder_pred = nn.Linear(decoder_dim, p * p * backbone.in_chans)
        nn.init.normal_(self.mask_token, std=0.02)
        for lin in (self.decoder_embed, self.decoder_pred):  # the reference code's xavier init
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (encoded class token + visible patches (B, 1 + L, D), mask, ids_restore, ids_shuffle)."""
        net = self.backbone
        x = net.conv_proj(images)  # (B, D, h, w)
        pos = net.pos_embedding_for((x.shape[-2], x.shape[-1]))  # (1, 1 + N, D)
        x = x.flatten(2).transpose(1, 2) + pos[:, 1:]  # (B, N, D)
        x, mask, ids_restore, ids_shuffle = random_masking(x, self.mask_ratio)
        cls = (net.class_token + pos[:, :1]).expand(len(x), -1, -1)
        x = torch.cat([cls, x], dim=1)  # (B, 1 + L, D)
        return net.encoder.ln(net.encoder.layers(net.encoder.dropout(x))), mask, ids_restore, ids_shuffle

    def decode(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """Return the predicted pixels of every patch (B, N, P·P·C) from the encoded visible tokens."""
        x = self.decoder_embed(latent)  # (B, 1 + L, Dd)
        b, n, dd = len(x), ids_restore.shape[1], x.shape[-1]
        tokens = torch.cat(
            [x[:, 1:], self.mask_token.expand(b, n - (x.shape[1] - 1), -1)], dim=1
        )  # (B, N, Dd)
        tokens = torch.gather(tokens, 1, ids_restore[..., None].expand(-1, -1, dd))  # back in raster order
        x = torch.cat([x[:, :1], tokens], dim=1) + self.decoder_pos
        return self.decoder_pred(self.decoder_norm(self.decoder_blocks(x)))[:, 1:]

    def forward(self, views: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        images = views[0]
        latent, mask, ids_restore, ids_shuffle = self.encode(images)
        pred = self.decode(latent, ids_restore).float()
        target = patchify(images.float(), self.backbone.patch_size)
        loss = mae_loss(pred, target, mask)
        with torch.no_grad():  # pretext accuracy: a masked patch's prediction is nearest its own target
            mean, var = target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)
            normed = (target - mean) / (var + 1e-6).sqrt()
            hidden = ids_shuffle[
                :, int(ids_shuffle.shape[1] * (1 - self.mask_ratio)) :
            ]  # (B, M) masked patches
            pick = hidden[..., None].expand(-1, -1, pred.shape[-1])
            d = torch.cdist(torch.gather(pred, 1, pick), torch.gather(normed, 1, pick))  # (B, M, M)
            acc = (d.argmin(-1) == torch.arange(d.shape[1], device=d.device)).float().mean()
        return loss, acc
