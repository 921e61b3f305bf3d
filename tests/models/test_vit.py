"""Vision Transformer: hand counts, SDPA attention = nn.MultiheadAttention, resolution changes, timm names."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import cnnlineage
from cnnlineage.models.vit import VIT_CFGS, resize_pos_embedding
from cnnlineage.weights import load_timm


def _hand_count(patch, depth, dim, mlp, img=224, classes=1000, chans=3):
    tokens = (img // patch) ** 2 + 1
    embed = chans * patch * patch * dim + dim + dim + tokens * dim  # patch conv, class token, positions
    # per block: 2 LayerNorms, q/k/v (D x 3D + 3D), output projection, MLP D -> M -> D
    attn = (3 * dim * dim + 3 * dim) + (dim * dim + dim)
    block = 2 * 2 * dim + attn + (dim * mlp + mlp) + (mlp * dim + dim)
    return embed + depth * block + 2 * dim + dim * classes + classes


@pytest.mark.parametrize(
    "name, args",
    [
        ("vit_b_16", (16, 12, 768, 3072)),  # the paper's Table 1: ViT-Base, 86M
        ("vit_b_32", (32, 12, 768, 3072)),
        ("vit_l_16", (16, 24, 1024, 4096)),
        ("vit_small_patch16_224", (16, 12, 384, 1536)),
        ("vit_tiny_patch4_32", (4, 6, 192, 768, 32, 10)),
    ],
)
def test_parameter_count_by_hand(name, args):
    card = cnnlineage.model_info(name)
    assert card.ref_params == _hand_count(*args)
    if card.torchvision:
        from torchvision.models import get_model_weights

        meta = get_model_weights(name).DEFAULT.meta
        assert card.ref_params == meta["num_params"]
        assert card.ref_top1 == meta["_metrics"]["ImageNet-1K"]["acc@1"]


def test_paper_table_1_widths():
    # Table 1: Base 12 layers, D 768, MLP 3072, 12 heads; Large 24, 1024, 4096, 16
    base, large = VIT_CFGS["vit_b_16"], VIT_CFGS["vit_l_16"]
    assert (base.depth, base.dim, base.mlp_dim, base.num_heads) == (12, 768, 3072, 12)
    assert (large.depth, large.dim, large.mlp_dim, large.num_heads) == (24, 1024, 4096, 16)


def test_sdpa_attention_equals_multihead_attention():
    model = cnnlineage.create_model("vit_tiny_patch4_32")
    attn = model.encoder.layers.encoder_layer_0.self_attention
    ref = nn.MultiheadAttention(192, 3, batch_first=True)
    ref.load_state_dict(attn.state_dict())  # same parameter names and shapes
    x = torch.randn(2, 65, 192)
    with torch.no_grad():
        torch.testing.assert_close(attn(x), ref(x, x, x, need_weights=False)[0], rtol=1e-5, atol=1e-5)


def _torchvision_tiny(image_size, state_dict):
    from torchvision.models.vision_transformer import VisionTransformer

    ref = VisionTransformer(image_size, 4, 6, 3, 192, 768, num_classes=10).eval()
    ref.load_state_dict(state_dict)
    return ref


def _torchvision_tokens(ref, x):
    # torchvision's forward up to the encoder output, (B, 1 + N, D)
    tokens = ref._process_input(x)
    return ref.encoder(torch.cat([ref.class_token.expand(x.shape[0], -1, -1), tokens], dim=1))


def test_trained_at_one_resolution_evaluates_at_another():
    from torchvision.models.vision_transformer import interpolate_embeddings

    torch.manual_seed(0)
    model = cnnlineage.create_model("vit_tiny_patch4_32")
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(3):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    model.eval()
    pos_before = model.encoder.pos_embedding.detach().clone()
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        at_32 = model(x)
        # at the default size: exactly torchvision's ViT (which never interpolates)
        ref = _torchvision_tiny(32, sd)
        torch.testing.assert_close(at_32, ref(x), rtol=0, atol=1e-5)
        # up and down: position embeddings resized as torchvision's interpolate_embeddings does;
        # tokens are compared too, since the freshly trained head's logits are small
        for size in (64, 16):
            xs = nn.functional.interpolate(x, size=(size, size), mode="bilinear")
            ref = _torchvision_tiny(size, interpolate_embeddings(size, 4, dict(sd)))
            tokens = model.forward_features(xs)
            assert tokens.shape == (4, 1 + (size // 4) ** 2, 192)
            torch.testing.assert_close(tokens, _torchvision_tokens(ref, xs), rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(model(xs), ref(xs), rtol=0, atol=1e-5)
        assert model(torch.randn(2, 3, 32, 48)).shape == (2, 10)  # non-square grids too
        # the interpolation changed nothing in the model: same parameters, same output at 32
        assert torch.equal(model.encoder.pos_embedding, pos_before)
        assert torch.equal(model(x), at_32)


def test_resize_pos_embedding_keeps_class_token_and_is_identity_at_same_grid():
    pos = torch.randn(1, 1 + 4 * 4, 8)
    assert resize_pos_embedding(pos, (4, 4), (4, 4)) is pos
    out = resize_pos_embedding(pos, (4, 4), (6, 3))
    assert out.shape == (1, 1 + 18, 8)
    assert torch.equal(out[:, 0], pos[:, 0])
    # align_corners=True: the grid's corners are kept exactly
    grid, new = pos[0, 1:].reshape(4, 4, 8), out[0, 1:].reshape(6, 3, 8)
    torch.testing.assert_close(new[0, 0], grid[0, 0])
    torch.testing.assert_close(new[-1, -1], grid[-1, -1])


def test_head_reads_the_class_token():
    model = cnnlineage.create_model("vit_tiny_patch4_32").eval()
    nn.init.normal_(model.heads.head.weight)  # the head starts at zero
    tokens = torch.randn(2, 65, 192)
    changed = tokens.clone()
    changed[:, 1:] += 1.0  # patch tokens do not reach the head, only the class token does
    with torch.no_grad():
        assert torch.equal(model.forward_head(tokens), model.forward_head(changed))
        assert torch.equal(model.forward_head(tokens, pre_logits=True), tokens[:, 0])


def test_timm_names_load_into_the_tiny_vit():
    pytest.importorskip("timm")
    from timm.models.vision_transformer import VisionTransformer

    ref = VisionTransformer(
        img_size=32, patch_size=4, embed_dim=192, depth=6, num_heads=3, num_classes=10
    ).eval()
    ours = load_timm(cnnlineage.create_model("vit_tiny_patch4_32"), ref.state_dict()).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        # timm's forward_features is also the final-normed token sequence (B, 1 + N, D)
        torch.testing.assert_close(ours.forward_features(x), ref.forward_features(x), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-5)


def test_feature_info_is_token_sequences_per_quarter():
    model = cnnlineage.create_model("vit_tiny_patch4_32")
    assert [f["module"] for f in model.feature_info] == [
        f"encoder.layers.encoder_layer_{i}" for i in (0, 2, 3, 5)
    ]
    assert all(f["num_chs"] == 192 and f["reduction"] == 4 for f in model.feature_info)
    assert model.size_multiple == 4 and model.min_size == (4, 4)
    with pytest.raises(ValueError, match="divisible by 4"):
        model(torch.randn(1, 3, 30, 32))
