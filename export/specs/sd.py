from lredit.export import wrappers
from lredit.graphs import Outputs

from .base import FULL, Axis, GraphSpec, Tensor, Tolerance


def _latent(m, s):
    return s.working_size // m.vae_scale_factor


UNET_SPEC = GraphSpec(
    name="unet",
    inputs=(
        Tensor("sample", ("batch", "unet_in", "latent", "latent")),
        Tensor("timestep", ("batch",), fill="timestep"),
        Tensor("encoder_hidden_states", ("batch", "text_len", "context")),
    ),
    outputs=(Tensor(Outputs.NOISE_PRED, ("batch", 4, "latent", "latent")),),
    axes=(Axis("batch", 2, 18, 32),),  # 2K rows with guidance, K in 1..16
    wrap=lambda m, s: wrappers.UnetGraph(m.unet),
    # unet_in: 9 for an inpainting UNet (latent, mask, masked-image latent), 4 for a text-to-image one
    static_sizes=lambda m, s: {"latent": _latent(m, s), "text_len": 77, "context": m.unet.config.cross_attention_dim,
                               "unet_in": m.unet.config.in_channels},
    tolerance={"fp32": Tolerance(1e-4, 1e-4), "fp16": Tolerance(3e-2, 3e-2)},
    ort_attention=True,
)

VAE_ENCODER_SPEC = GraphSpec(
    name="vae_encoder",
    inputs=(Tensor("images", ("batch", 3, "image", "image")),),
    outputs=(Tensor(Outputs.LATENTS, ("batch", 4, "latent", "latent")),),
    axes=(Axis("batch", 1, 9, 16),),
    wrap=lambda m, s: wrappers.VaeEncoderGraph(m.vae),
    static_sizes=lambda m, s: {"image": s.working_size, "latent": _latent(m, s)},
    tolerance={"fp32": Tolerance(1e-4, 1e-4), "fp16": Tolerance(3e-2, 3e-2)},
    notes="posterior mean x scaling_factor",
    ort_attention=True,
)

VAE_DECODER_SPEC = GraphSpec(
    name="vae_decoder",
    inputs=(Tensor("latents", ("batch", 4, "latent", "latent")),),
    outputs=(Tensor(Outputs.IMAGES, ("batch", 3, "image", "image")),),
    # square latent crops up to the full latent: search's pruning decodes each box's crop only
    axes=(Axis("batch", 1, 9, 16), Axis("latent", 4, FULL, FULL), Axis("image", 32, FULL, FULL)),
    wrap=lambda m, s: wrappers.VaeDecoderGraph(m.vae),
    static_sizes=lambda m, s: {"image": s.working_size, "latent": _latent(m, s)},
    tolerance={"fp32": Tolerance(1e-4, 1e-4), "fp16": Tolerance(3e-2, 3e-2)},
    notes="input divided by scaling_factor in-graph; output in about [-1, 1]",
    ort_attention=True,
)
