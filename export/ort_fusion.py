"""ONNX Runtime variant of a graph: scaled-dot-product attention fused into one
com.microsoft MultiHeadAttention node per attention.

The exported pattern (torch's SDPA symbolic, opset 17) materialises softmax(Q K^T) for every
head: at 512x512 that is the UNet's 1024- and the VAE's 4096-token attention, most of the CPU
time. ONNX Runtime's MultiHeadAttention computes the same thing without the full matrix. The
variant is written beside the standard graph (which TensorRT keeps using) and shares its
external weights file, so it costs a graph file, not a second copy of the weights.

Pattern, per attention (diffusers' AttnProcessor2_0 as traced):
  q = Mul(Transpose(Reshape(Xq, [B, -1, H, D]), 0213), s); k = Mul(Transpose(Reshape(Xk), 0231), s)
  v = Transpose(Reshape(Xv), 0213); out = Reshape(Transpose(MatMul(Softmax(MatMul(q, k)), v), 0213))
becomes out = MultiHeadAttention(Xq, Xk, Xv, num_heads=H) (scale 1/sqrt(D), as s*s is).
Attentions that do not match exactly (masked, causal) are left as they are.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import helper, numpy_helper

from lredit.atomic import set_file_mode


class _Graph:
    def __init__(self, graph: onnx.GraphProto):
        self.graph = graph
        self.producer = {out: node for node in graph.node for out in node.output}
        self.consumers: dict[str, list] = {}
        for node in graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.constants = {n.output[0]: numpy_helper.to_array(n.attribute[0].t)
                          for n in graph.node if n.op_type == "Constant" and n.attribute[0].name == "value"}

    def up(self, name: str, op: str, perm: tuple | None = None):
        node = self.producer.get(name)
        if node is None or node.op_type != op:
            return None
        if perm is not None and tuple(helper.get_attribute_value(node.attribute[0])) != perm:
            return None
        return node

    def only_consumer(self, name: str, op: str):
        users = self.consumers.get(name, [])
        return users[0] if len(users) == 1 and users[0].op_type == op else None

    def scale_of(self, mul) -> float | None:
        """The scalar a Mul multiplies by, when it is a constant (else None: computed at run time)."""
        value = self.constants.get(mul.input[1])
        return None if value is None or value.size != 1 else float(value.reshape(-1)[0])

    def default_sdpa_scale(self, mul_q, mul_k) -> bool:
        """Both sides multiplied by Sqrt of one run-time value computed as 1 / sqrt(...): SDPA's
        default scale 1/sqrt(D), split as sqrt on q and k (MultiHeadAttention's default)."""
        sq, sk = self.up(mul_q.input[1], "Sqrt"), self.up(mul_k.input[1], "Sqrt")
        if sq is None or sk is None or sq.input[0] != sk.input[0]:
            return False
        node = self.producer.get(sq.input[0])
        while node is not None and node.op_type == "Cast":
            node = self.producer.get(node.input[0])
        if node is None or node.op_type != "Div":
            return False
        one = self.constants.get(node.input[0])
        return one is not None and one.size == 1 and float(one.reshape(-1)[0]) == 1.0 and self.up(node.input[1], "Sqrt") is not None

    def heads_of(self, reshape) -> int | None:
        """H from Reshape(x, Concat(B, -1, H, D)) with H a constant."""
        concat = self.up(reshape.input[1], "Concat")
        if concat is None or len(concat.input) != 4:
            return None
        value = self.constants.get(concat.input[2])
        return None if value is None or value.size != 1 else int(value.reshape(-1)[0])


def _match(g: _Graph, softmax):
    """The nodes of one attention around `softmax` and its MultiHeadAttention, or None."""
    scores = g.up(softmax.input[0], "MatMul")
    weighted = g.only_consumer(softmax.output[0], "MatMul")
    if scores is None or weighted is None:
        return None
    mul_q, mul_k = g.up(scores.input[0], "Mul"), g.up(scores.input[1], "Mul")
    if mul_q is None or mul_k is None:
        return None
    t_q = g.up(mul_q.input[0], "Transpose", (0, 2, 1, 3))
    t_k = g.up(mul_k.input[0], "Transpose", (0, 2, 3, 1))
    t_v = g.up(weighted.input[1], "Transpose", (0, 2, 1, 3))
    if t_q is None or t_k is None or t_v is None:
        return None
    r_q, r_k, r_v = (g.up(t.input[0], "Reshape") for t in (t_q, t_k, t_v))
    if r_q is None or r_k is None or r_v is None:
        return None
    heads = g.heads_of(r_q)
    t_out = g.only_consumer(weighted.output[0], "Transpose")
    r_out = g.only_consumer(t_out.output[0], "Reshape") if t_out is not None else None
    if heads is None or r_out is None or tuple(helper.get_attribute_value(t_out.attribute[0])) != (0, 2, 1, 3):
        return None
    s_q, s_k = g.scale_of(mul_q), g.scale_of(mul_k)
    attrs = {"num_heads": heads}
    if s_q is not None and s_k is not None:
        attrs["scale"] = s_q * s_k
    elif not g.default_sdpa_scale(mul_q, mul_k):
        return None
    mha = helper.make_node("MultiHeadAttention", [r_q.input[0], r_k.input[0], r_v.input[0]], [r_out.output[0]],
                           name=f"{weighted.name}/MultiHeadAttention", domain="com.microsoft", **attrs)
    return (softmax, scores, weighted, mul_q, mul_k, t_q, t_k, t_v, t_out, r_out), mha


def _prune(graph: onnx.GraphProto) -> None:
    """Drop nodes whose outputs nothing uses any more (the q/k/v reshapes and their shapes)."""
    used = {o.name for o in graph.output}
    kept = []
    for node in reversed(list(graph.node)):
        if any(out in used for out in node.output):
            kept.append(node)
            used.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(kept))


def fuse_attention(model: onnx.ModelProto) -> int:
    """Rewrite `model` in place; returns how many attentions were fused."""
    g = _Graph(model.graph)
    replaced, placed = set(), {}
    for node in list(model.graph.node):
        if node.op_type != "Softmax":
            continue
        found = _match(g, node)
        if found is None:
            continue
        nodes, mha = found
        replaced.update(id(n) for n in nodes)
        placed[id(nodes[-1])] = mha  # where the output reshape was: inputs are all defined there
    if not placed:
        return 0
    order = []
    for node in model.graph.node:
        if id(node) in placed:
            order.append(placed[id(node)])
        elif id(node) not in replaced:
            order.append(node)
    del model.graph.node[:]
    model.graph.node.extend(order)
    if not any(op.domain == "com.microsoft" for op in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    _prune(model.graph)
    return len(placed)


def write_ort_variant(src: Path, dst: Path) -> int:
    """Fuse `src` into `dst` (same folder: its external weights file is shared, not copied).
    Returns the count; 0 means nothing matched and nothing was written. `src` must hold its
    weights in an external file: a variant of a self-contained graph would be a second copy."""
    if Path(src).parent != Path(dst).parent:
        raise ValueError("the ORT variant must sit beside its graph to share the external weights")
    model = onnx.load(str(src), load_external_data=False)
    count = fuse_attention(model)
    embedded = [t.name for t in model.graph.initializer if t.data_location != onnx.TensorProto.EXTERNAL]
    if count and embedded:
        raise ValueError(f"{Path(src).name} embeds {len(embedded)} initializers (e.g. {embedded[0]}); "
                         "export it with external weights so its variant can share them")
    if count:
        onnx.save(model, str(dst))
        set_file_mode(dst)
    return count


def ort_variant_name(rel: str) -> str:
    """onnx/unet.onnx -> onnx/unet.ort.onnx"""
    return rel[: -len(".onnx")] + ".ort.onnx"

