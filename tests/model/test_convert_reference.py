"""A tiny model written in the official Step1X-Edit key layout converts with no missing/unexpected key, and
our diffusers-based transformer reproduces a direct implementation of the documented math
(shared/reference/step1x_model.md §2-3) with the position ids built by the reference inference.py's rule,
for both released versions; the same weights in upstream's diffusers layout load to the same model."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from model.convert import (
    convert_official_state_dict,
    from_diffusers_state_dict,
    to_diffusers_state_dict,
)
from model.transformer import Step1XEditTransformer

HIDDEN, HEADS, HEAD_DIM, AXES = 32, 2, 16, (4, 6, 6)
IN, CTX, VEC, MLLM, CONN_HEADS = 16, 32, 16, 32, 2  # MLLM: the tiny Qwen2.5-VL width
DEPTH, DEPTH_SINGLE, REFINER_DEPTH = 2, 2, 2
MLP = 4 * HIDDEN


def official_shapes(version: str) -> dict[str, tuple[int, ...]]:
    """Every tensor of the official checkpoint layout (Appendix A) at tiny widths."""
    s: dict[str, tuple[int, ...]] = {}

    def lin(name: str, out_f: int, in_f: int) -> None:
        s[f"{name}.weight"], s[f"{name}.bias"] = (out_f, in_f), (out_f,)

    lin("img_in", HIDDEN, IN)
    lin("txt_in", HIDDEN, CTX)
    lin("time_in.in_layer", HIDDEN, 256)
    lin("time_in.out_layer", HIDDEN, HIDDEN)
    lin("vector_in.in_layer", HIDDEN, VEC)
    lin("vector_in.out_layer", HIDDEN, HIDDEN)
    for i in range(DEPTH):
        for st in ("img", "txt"):
            p = f"double_blocks.{i}.{st}"
            lin(f"{p}_mod.lin", 6 * HIDDEN, HIDDEN)
            lin(f"{p}_attn.qkv", 3 * HIDDEN, HIDDEN)
            s[f"{p}_attn.norm.query_norm.scale"] = s[f"{p}_attn.norm.key_norm.scale"] = (HEAD_DIM,)
            lin(f"{p}_attn.proj", HIDDEN, HIDDEN)
            lin(f"{p}_mlp.0", MLP, HIDDEN)
            lin(f"{p}_mlp.2", HIDDEN, MLP)
    for i in range(DEPTH_SINGLE):
        p = f"single_blocks.{i}"
        lin(f"{p}.linear1", 3 * HIDDEN + MLP, HIDDEN)
        lin(f"{p}.linear2", HIDDEN, HIDDEN + MLP)
        s[f"{p}.norm.query_norm.scale"] = s[f"{p}.norm.key_norm.scale"] = (HEAD_DIM,)
        lin(f"{p}.modulation.lin", 3 * HIDDEN, HIDDEN)
    lin("final_layer.linear", IN, HIDDEN)
    lin("final_layer.adaLN_modulation.1", 2 * HIDDEN, HIDDEN)
    c = "connector.S"
    lin(f"{c}.input_embedder", CTX, MLLM)
    lin(f"{c}.t_embedder.mlp.0", CTX, 256)
    lin(f"{c}.t_embedder.mlp.2", CTX, CTX)
    lin(f"{c}.c_embedder.linear_1", CTX, MLLM)
    lin(f"{c}.c_embedder.linear_2", CTX, CTX)
    for j in range(REFINER_DEPTH):
        b = f"{c}.individual_token_refiner.blocks.{j}"
        for n in ("norm1", "norm2"):
            s[f"{b}.{n}.weight"] = s[f"{b}.{n}.bias"] = (CTX,)
        lin(f"{b}.self_attn_qkv", 3 * CTX, CTX)
        lin(f"{b}.self_attn_proj", CTX, CTX)
        lin(f"{b}.mlp.fc1", 4 * CTX, CTX)
        lin(f"{b}.mlp.fc2", CTX, 4 * CTX)
        lin(f"{b}.adaLN_modulation.1", 2 * CTX, CTX)
    lin("connector.global_proj_out", VEC, MLLM)
    if version == "v1.0":
        s["connector.scale_factor"] = ()
    return s


# ---- the documented math, written directly on the official state dict ----


def _lin(sd: dict, name: str, x: torch.Tensor) -> torch.Tensor:
    return x @ sd[f"{name}.weight"].T + sd[f"{name}.bias"]


def _sinusoid(t: torch.Tensor, dim: int = 256) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float64) / half)
    args = t.double()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1).float()  # [cos | sin]


def _ln(x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], eps=1e-6)


def _rms(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w


def _rope(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    angles = []
    for axis, d in enumerate(AXES):
        omega = 1.0 / 10000 ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
        angles.append(ids[:, axis].double()[:, None] * omega[None])
    a = torch.cat(angles, dim=-1)  # [L, head_dim/2]
    return torch.cos(a).float(), torch.sin(a).float()


def _apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    x0, x1 = x[..., 0::2], x[..., 1::2]  # adjacent interleaved pairs
    out = torch.stack([cos * x0 - sin * x1, sin * x0 + cos * x1], dim=-1)
    return out.flatten(-2)


def _heads(x: torch.Tensor, n: int) -> torch.Tensor:
    b, l_, _ = x.shape
    return x.view(b, l_, n, -1).transpose(1, 2)  # [B, H, L, D]


def _attention(q, k, v, mask=None) -> torch.Tensor:
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    out = scores.softmax(-1) @ v
    return out.transpose(1, 2).flatten(2)


def reference_connector(sd, x, mask, t, version):
    m = mask.float()[..., None]
    mean = (x * m).sum(1) / m.sum(1)
    pooled = mean * (1 + sd["connector.scale_factor"]) if version == "v1.0" else mean
    y = _lin(sd, "connector.global_proj_out", pooled)
    c = "connector.S"
    t_emb = _lin(sd, f"{c}.t_embedder.mlp.2", F.silu(_lin(sd, f"{c}.t_embedder.mlp.0", _sinusoid(1000 * t))))
    c_emb = _lin(sd, f"{c}.c_embedder.linear_2", F.silu(_lin(sd, f"{c}.c_embedder.linear_1", mean)))
    cond = t_emb + c_emb
    h = _lin(sd, f"{c}.input_embedder", x)
    valid = mask.bool()
    allowed = valid[:, None, :, None] & valid[:, None, None, :]  # [B, 1, T, T]
    allowed[..., 0] = True  # column 0 always allowed so padded rows are not all -inf
    for j in range(REFINER_DEPTH):
        b = f"{c}.individual_token_refiner.blocks.{j}"
        g_attn, g_mlp = _lin(sd, f"{b}.adaLN_modulation.1", F.silu(cond))[:, None].chunk(2, dim=-1)
        n1 = F.layer_norm(h, (CTX,), sd[f"{b}.norm1.weight"], sd[f"{b}.norm1.bias"], eps=1e-6)
        q, k, v = _lin(sd, f"{b}.self_attn_qkv", n1).chunk(3, dim=-1)
        a = _attention(_heads(q, CONN_HEADS), _heads(k, CONN_HEADS), _heads(v, CONN_HEADS), allowed)
        h = h + g_attn * _lin(sd, f"{b}.self_attn_proj", a)
        n2 = F.layer_norm(h, (CTX,), sd[f"{b}.norm2.weight"], sd[f"{b}.norm2.bias"], eps=1e-6)
        h = h + g_mlp * _lin(sd, f"{b}.mlp.fc2", F.silu(_lin(sd, f"{b}.mlp.fc1", n2)))
    return h, y


def upstream_image_ids(version: str, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(target ids, reference ids) [h*w, 3] as the reference inference.py's prepare() builds them: the target
    from zeros, the reference from zeros (v1.0) or ones (v1.1), then the row and column ranges added."""
    img_ids = torch.zeros(h, w, 3)
    img_ids[..., 1] = img_ids[..., 1] + torch.arange(h)[:, None]
    img_ids[..., 2] = img_ids[..., 2] + torch.arange(w)[None, :]
    ref_ids = torch.zeros(h, w, 3) if version == "v1.0" else torch.ones(h, w, 3)
    ref_ids[..., 1] = ref_ids[..., 1] + torch.arange(h)[:, None]
    ref_ids[..., 2] = ref_ids[..., 2] + torch.arange(w)[None, :]
    return img_ids.reshape(h * w, 3), ref_ids.reshape(h * w, 3)


def reference_forward(sd, latents, reference, x, mask, t, grid, version, ids_version=None):
    """The documented forward; ids_version picks another release's position ids (default: version's)."""
    txt_tokens, y = reference_connector(sd, x, mask, t, version)
    n = latents.shape[1]
    img = _lin(sd, "img_in", torch.cat([latents, reference], 1))
    txt = _lin(sd, "txt_in", txt_tokens)
    mlp_embed = lambda name, v: _lin(sd, f"{name}.out_layer", F.silu(_lin(sd, f"{name}.in_layer", v)))  # noqa: E731
    vec = mlp_embed("time_in", _sinusoid(1000 * t)) + mlp_embed("vector_in", y)
    img_ids, ref_ids = upstream_image_ids(ids_version or version, *grid)
    ids = torch.cat([torch.zeros(txt.shape[1], 3), img_ids, ref_ids])
    cos, sin = _rope(ids)
    gelu = lambda v: F.gelu(v, approximate="tanh")  # noqa: E731
    T = txt.shape[1]
    for i in range(DEPTH):
        p = f"double_blocks.{i}"
        mods = {}
        qkv = {}
        for st, h in (("img", img), ("txt", txt)):
            mods[st] = _lin(sd, f"{p}.{st}_mod.lin", F.silu(vec))[:, None].chunk(6, dim=-1)
            sh1, sc1 = mods[st][0], mods[st][1]
            q, k, v = _lin(sd, f"{p}.{st}_attn.qkv", (1 + sc1) * _ln(h) + sh1).chunk(3, dim=-1)
            q = _rms(_heads(q, HEADS), sd[f"{p}.{st}_attn.norm.query_norm.scale"])
            k = _rms(_heads(k, HEADS), sd[f"{p}.{st}_attn.norm.key_norm.scale"])
            qkv[st] = (q, k, _heads(v, HEADS))
        q, k, v = (torch.cat([qkv["txt"][j], qkv["img"][j]], dim=2) for j in range(3))  # [txt ; img]
        a = _attention(_apply_rope(q, cos, sin), _apply_rope(k, cos, sin), v)
        outs = {"txt": a[:, :T], "img": a[:, T:]}
        new = {}
        for st, h in (("img", img), ("txt", txt)):
            sh1, sc1, g1, sh2, sc2, g2 = mods[st]
            h = h + g1 * _lin(sd, f"{p}.{st}_attn.proj", outs[st])
            m = _lin(sd, f"{p}.{st}_mlp.2", gelu(_lin(sd, f"{p}.{st}_mlp.0", (1 + sc2) * _ln(h) + sh2)))
            new[st] = h + g2 * m
        img, txt = new["img"], new["txt"]
    h = torch.cat([txt, img], 1)
    for i in range(DEPTH_SINGLE):
        p = f"single_blocks.{i}"
        sh, sc, g = _lin(sd, f"{p}.modulation.lin", F.silu(vec))[:, None].chunk(3, dim=-1)
        lin1 = _lin(sd, f"{p}.linear1", (1 + sc) * _ln(h) + sh)
        qkv_, mlp = lin1.split([3 * HIDDEN, MLP], dim=-1)
        q, k, v = qkv_.chunk(3, dim=-1)
        q = _rms(_heads(q, HEADS), sd[f"{p}.norm.query_norm.scale"])
        k = _rms(_heads(k, HEADS), sd[f"{p}.norm.key_norm.scale"])
        a = _attention(_apply_rope(q, cos, sin), _apply_rope(k, cos, sin), _heads(v, HEADS))
        h = h + g * _lin(sd, f"{p}.linear2", torch.cat([a, gelu(mlp)], -1))
    img = h[:, T:]
    shift, scale = _lin(sd, "final_layer.adaLN_modulation.1", F.silu(vec))[:, None].chunk(2, dim=-1)
    out = _lin(sd, "final_layer.linear", (1 + scale) * _ln(img) + shift)
    return out[:, :n]


def tiny_dims() -> dict:
    """The tiny model's dimensions, as Step1XEditTransformer keyword arguments."""
    return dict(
        in_channels=IN,
        num_layers=DEPTH,
        num_single_layers=DEPTH_SINGLE,
        attention_head_dim=HEAD_DIM,
        num_attention_heads=HEADS,
        joint_attention_dim=CTX,
        pooled_projection_dim=VEC,
        axes_dims_rope=AXES,
        mllm_hidden_size=MLLM,
        connector_num_attention_heads=CONN_HEADS,
        connector_attention_head_dim=CTX // CONN_HEADS,
        connector_num_layers=REFINER_DEPTH,
    )


@pytest.mark.parametrize("version", ["v1.0", "v1.1"])
def test_official_layout_converts_and_matches_reference(version: str) -> None:
    gen = torch.Generator().manual_seed(0)
    official = {k: torch.randn(shape, generator=gen) * 0.2 for k, shape in official_shapes(version).items()}
    # norm scales near 1 and a v1.0 scale factor near its init, as in trained checkpoints
    for k in official:
        if k.endswith(".scale") or k.endswith("norm1.weight") or k.endswith("norm2.weight"):
            official[k] = 1 + official[k]
    converted = convert_official_state_dict(dict(official))
    model = Step1XEditTransformer.for_version(version, **tiny_dims())
    result = model.load_state_dict(converted, strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert sum(t.numel() for t in official.values()) == sum(p.numel() for p in model.parameters())

    b, grid, t_len = 2, (3, 4), 10
    n = grid[0] * grid[1]
    latents, reference = torch.randn(b, n, IN, generator=gen), torch.randn(b, n, IN, generator=gen)
    x = torch.randn(b, t_len, MLLM, generator=gen)
    mask = torch.zeros(b, t_len, dtype=torch.long)
    mask[0, :7], mask[1, :4] = 1, 1  # padded positions, which the DiT does not mask
    t = torch.tensor([0.9, 0.3])
    with torch.no_grad():
        ours = model(latents, reference, x, mask, t, grid)
        ref = reference_forward(official, latents, reference, x, mask, t, grid, version)
    assert ours.shape == (b, n, IN)
    rel = (ours - ref).norm() / ref.norm()
    assert rel < 1e-5, f"relative error {rel:.2e}"
    # the check is sensitive: the other release's reference ids give a different output
    with torch.no_grad():
        other_ids = {"v1.0": "v1.1", "v1.1": "v1.0"}[version]
        other = reference_forward(official, latents, reference, x, mask, t, grid, version, other_ids)
    assert (other - ref).norm() / ref.norm() > 1e-3


def test_unknown_official_key_is_an_error() -> None:
    sd = {k: torch.zeros(s) for k, s in official_shapes("v1.1").items()}
    sd["guidance_in.in_layer.weight"] = torch.zeros(HIDDEN, 256)
    with pytest.raises(KeyError, match="guidance_in"):
        convert_official_state_dict(sd)


def test_load_official_file(tmp_path) -> None:
    """The file loader (meta-device init, strict, safetensors) gives the same model as the direct load."""
    from safetensors.torch import save_file

    from model.loading import load_official_transformer

    gen = torch.Generator().manual_seed(1)
    official = {k: torch.randn(shape, generator=gen) * 0.2 for k, shape in official_shapes("v1.0").items()}
    save_file(official, str(tmp_path / "step1x-edit-i1258.safetensors"))
    dims = tiny_dims()
    model = load_official_transformer(
        tmp_path / "step1x-edit-i1258.safetensors", "v1.0", torch.float32, **dims
    )
    assert model.connector.scale_factor is not None and tuple(model.config.reference_id_offset) == (0, 0, 0)
    grid, n = (2, 3), 6
    args = (
        torch.randn(1, n, IN, generator=gen),
        torch.randn(1, n, IN, generator=gen),
        torch.randn(1, 5, MLLM, generator=gen),
        torch.ones(1, 5, dtype=torch.long),
        torch.tensor([0.5]),
        grid,
    )
    with torch.no_grad():
        ours = model(*args)
        ref = reference_forward(official, *args[:5], grid, "v1.0")
    assert (ours - ref).norm() / ref.norm() < 1e-5
    # our own format round-trips through save_pretrained / from_pretrained (safetensors + config.json)
    model.save_pretrained(tmp_path / "ours")
    assert (tmp_path / "ours" / "diffusion_pytorch_model.safetensors").exists()
    again = type(model).from_pretrained(tmp_path / "ours")
    with torch.no_grad():
        torch.testing.assert_close(again(*args), ours)


def _random_official(version: str, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {k: torch.randn(shape, generator=gen) * 0.2 for k, shape in official_shapes(version).items()}


def test_upstream_diffusers_layout_keys_and_round_trip() -> None:
    """Upstream's diffusers transformer keeps the official connector names, renames the two embedders and
    otherwise uses diffusers' FLUX names (its conversion script); ours maps to and from it exactly."""
    official = _random_official("v1.1", 2)
    ours = convert_official_state_dict(dict(official))
    layout = to_diffusers_state_dict(ours)
    connector = {k: v for k, v in official.items() if k.startswith("connector.")}
    assert {k: v for k, v in layout.items() if k.startswith("connector.")}.keys() == connector.keys()
    assert all(torch.equal(layout[k], v) for k, v in connector.items())
    assert torch.equal(layout["time_embed.in_layer.weight"], official["time_in.in_layer.weight"])
    assert torch.equal(layout["vec_embed.out_layer.bias"], official["vector_in.out_layer.bias"])
    q = official["double_blocks.1.img_attn.qkv.weight"].chunk(3)[0]
    assert torch.equal(layout["transformer_blocks.1.attn.to_q.weight"], q)
    shift, scale = official["final_layer.adaLN_modulation.1.weight"].chunk(2)
    assert torch.equal(layout["norm_out.linear.weight"], torch.cat([scale, shift]))
    back = from_diffusers_state_dict(layout)
    assert back.keys() == ours.keys() and all(torch.equal(back[k], ours[k]) for k in ours)


def test_upstream_diffusers_layout_folder_loads_to_the_reference_forward(tmp_path) -> None:
    import json

    from safetensors.torch import save_file

    from model.convert import to_diffusers_config
    from model.loading import load_transformer_folder

    official = _random_official("v1.1", 3)
    model = Step1XEditTransformer.for_version("v1.1", **tiny_dims())
    model.load_state_dict(convert_official_state_dict(dict(official)))
    config = to_diffusers_config(dict(model.config))
    # upstream's own config has none of our extra fields: the layout is v1.1
    del config["connector_scale_factor"], config["reference_id_offset"]
    folder = tmp_path / "transformer"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    layout = to_diffusers_state_dict(model.state_dict())
    save_file(
        {k: v.contiguous() for k, v in layout.items()}, str(folder / "diffusion_pytorch_model.safetensors")
    )
    loaded = load_transformer_folder(folder, torch.float32)
    assert tuple(loaded.config.reference_id_offset) == (1, 1, 1) and loaded.connector.scale_factor is None
    gen = torch.Generator().manual_seed(4)
    grid, n = (2, 3), 6
    args = (
        torch.randn(1, n, IN, generator=gen),
        torch.randn(1, n, IN, generator=gen),
        torch.randn(1, 5, MLLM, generator=gen),
        torch.ones(1, 5, dtype=torch.long),
        torch.tensor([0.7]),
    )
    with torch.no_grad():  # the model loaded from the official file, itself checked against the math above
        torch.testing.assert_close(loaded(*args, grid), model(*args, grid), rtol=0, atol=0)
    config["enable_text_token_mapping"] = True
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="enable_text_token_mapping"):
        load_transformer_folder(folder, torch.float32)


def test_from_single_file_reads_the_version_and_the_weights(tmp_path) -> None:
    from PIL import Image
    from safetensors.torch import save_file

    from model.loading import qwen_processor
    from model.sampler import Step1XEditPipeline
    from model.tiny import byte_tokenizer, tiny_qwen, tiny_vae

    official = _random_official("v1.0", 5)
    path = tmp_path / "Step1X-Edit" / "step1x-edit-i1258.safetensors"
    path.parent.mkdir()
    save_file(official, str(path))
    parts = {
        "vae": tiny_vae(),
        "text_encoder": tiny_qwen().model,
        "processor": qwen_processor(byte_tokenizer()),
    }
    pipe = Step1XEditPipeline.from_single_file(
        path, torch_dtype=torch.float32, transformer_config=tiny_dims(), **parts
    )
    assert pipe.config.version == "v1.0" and pipe.recipe.cfg_truncate == 1.0  # read from the file's keys
    assert tuple(pipe.transformer.config.reference_id_offset) == (0, 0, 0)
    expected = convert_official_state_dict(dict(official))
    state = pipe.transformer.state_dict()
    assert state.keys() == expected.keys() and all(torch.equal(state[k], v) for k, v in expected.items())
    pipe.set_progress_bar_config(disable=True)
    photo = Image.open("examples/photos/chelsea.png")
    assert (
        pipe(image=photo, prompt="add a hat", size_level=32, num_inference_steps=2).images[0].size
        == photo.size
    )
    # without a text encoder it looks for Qwen2.5-VL-7B-Instruct/ beside the file, then one folder up
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "Qwen2.5-VL-7B-Instruct")):
        Step1XEditPipeline.from_single_file(path, transformer_config=tiny_dims(), vae=tiny_vae())
