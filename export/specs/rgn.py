"""Two RGN graphs: `rgn` takes pooled maps (pooling done by the runtime or the fused kernel);
`rgn_roi` takes the raw DINO tokens and anchor points and does the 1x1 projection, the box
proposals and ROI-align in-graph with the standard ONNX RoiAlign operator."""

from lredit.export import wrappers
from lredit.graphs import Outputs

from .base import Axis, GraphSpec, Tensor, Tolerance

# The RGN's argmax decides the boxes, so it stays fp32 in every bundle (it costs nothing).
SPEC = GraphSpec(
    name="rgn",
    inputs=(Tensor("pooled", ("candidates", "pooled_channels", "roi", "roi")),),
    outputs=(Tensor(Outputs.LOG_PROBS, ("candidates", "sizes")),),
    axes=(Axis("candidates", 1, 9, 16),),
    wrap=lambda m, s: wrappers.RgnGraph(m.region_net),
    static_sizes=lambda m, s: {"pooled_channels": s.sizes * s.channels, "roi": s.roi_size, "sizes": s.sizes},
    tolerance={"fp32": Tolerance(1e-5, 1e-5), "fp16": Tolerance(1e-5, 1e-5)},
    fp16=False,
)

ROI_SPEC = GraphSpec(
    name="rgn_roi",
    inputs=(
        Tensor("features", (1, "tokens", "dim")),
        Tensor("anchors", ("candidates", 2), fill="cells"),
    ),
    outputs=(Tensor(Outputs.LOG_PROBS, ("candidates", "sizes")),),
    axes=(Axis("candidates", 1, 9, 16),),
    wrap=lambda m, s: wrappers.RgnRoiGraph(m.region_net, s.half_sizes, (s.dino_size // m.dino.config.patch_size,) * 2),
    static_sizes=lambda m, s: {
        "tokens": (s.dino_size // m.dino.config.patch_size) ** 2,
        "dim": m.dino.config.hidden_size,
        "sizes": s.sizes,
    },
    tolerance={"fp32": Tolerance(1e-4, 1e-4), "fp16": Tolerance(1e-4, 1e-4)},
    fp16=False,
    shares_weights_with="rgn",
    notes="anchors are (x, y) in feature cells; boxes clamped to the map; ROI-align aligned=False, scale 1",
)
