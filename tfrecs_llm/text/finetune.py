"""Which BERT weights train: ``frozen``, ``full``, the ``top_layers`` or ``lora`` adapters.

The mode comes from ``EncoderConfig.trainable``. ``TextEncoder`` tracks every backbone variable
(checkpoints and SavedModels store them all); this module decides which of them optimizers see.
A frozen encoder additionally lets training cache pooled text embeddings, which is what makes it
fast: the fine-tuning modes run BERT forward (and backward, as deep as the lowest trained layer)
on every step.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import tensorflow as tf

from tfrecs_llm.config import EncoderConfig
from tfrecs_llm.text.encoder import TextEncoder

logger = logging.getLogger(__name__)

MIXED_PRECISION_POLICY = "mixed_bfloat16"
"""bfloat16 keeps float32's exponent range, so fine-tuning needs no loss scaling (float16 would)."""

_POOLER = "pooled_dense/"
_LAYER = re.compile(r"^transformer_layer_(\d+)/")
_LORA = re.compile(r"/lora_kernel_[ab]$")


def lora_rank(backbone: Any) -> int | None:
    """The rank of the LoRA adapters ``backbone.enable_lora`` added, ``None`` without any."""
    ranks = {int(v.shape[0]) for v in backbone.weights if v.path.endswith("/lora_kernel_b")}
    return ranks.pop() if ranks else None


def trained_variables(backbone: Any, config: EncoderConfig) -> list[tf.Variable]:
    """The backbone's ``tf.Variable`` s that ``config.trainable`` fine-tunes, in backbone order.

    ``frozen``: none. ``full``: all but the ``[CLS]`` pooler (mean pooling never reads it).
    ``top_layers``: every variable of ``transformer_layer_i`` for ``i >= num_layers -
    trainable_layers``. ``lora``: the LoRA factors only (``lora_kernel_a/b``; the pretrained
    kernels and biases stay fixed, unlike keras-hub's default which also trains q/v biases).
    """
    mode = config.trainable
    weights = [v for v in backbone.weights if not v.path.startswith(_POOLER)]
    if mode == "frozen":
        return []
    if mode == "full":
        return [v.value for v in weights]
    if mode == "top_layers":
        num_layers = int(backbone.num_layers)
        if config.trainable_layers > num_layers:
            raise ValueError(
                f"encoder.trainable_layers={config.trainable_layers} exceeds the {num_layers} "
                "transformer layers of this BERT"
            )
        lowest = num_layers - config.trainable_layers
        return [v.value for v in weights if (m := _LAYER.match(v.path)) and int(m.group(1)) >= lowest]
    if mode == "lora":
        return [v.value for v in weights if _LORA.search(v.path)]
    raise ValueError(f"encoder.trainable: unknown fine-tuning mode {mode!r}")


def apply_finetune_mode(
    encoder: TextEncoder, config: EncoderConfig, for_training: bool = False
) -> list[tf.Variable]:
    """Makes ``encoder`` fine-tune what ``config.trainable`` says; returns those variables.

    ``lora`` adds rank-``config.lora_rank`` adapters first (once: an encoder that has them
    already keeps them). With ``for_training``, ``mixed_precision`` is refused on a machine
    without a GPU.
    """
    if for_training:
        check_mixed_precision(config)
    rank = lora_rank(encoder.backbone)
    if config.trainable == "lora":
        if rank is None:
            encoder.backbone.enable_lora(config.lora_rank)
        elif rank != config.lora_rank:
            raise ValueError(
                f"encoder.lora_rank={config.lora_rank}, but this encoder already has LoRA "
                f"adapters of rank {rank}; load a fresh encoder"
            )
    elif rank is not None:
        raise ValueError(
            f"encoder.trainable={config.trainable!r}, but this encoder has LoRA adapters "
            f"(rank {rank}); use encoder.trainable='lora' or load a fresh encoder"
        )
    variables = trained_variables(encoder.backbone, config)
    encoder.fine_tune_only(variables)
    encoder.trainable = config.trainable != "frozen"
    return variables


def check_mixed_precision(config: EncoderConfig) -> None:
    """Refuses ``encoder.mixed_precision`` where it cannot help: without a GPU."""
    if config.mixed_precision and not tf.config.list_physical_devices("GPU"):
        raise ValueError(
            "encoder.mixed_precision=true needs a GPU, and TensorFlow sees none on this machine; "
            "set encoder.mixed_precision=false to train on CPU"
        )


def backbone_dtype(config: EncoderConfig) -> str | None:
    """Keras dtype policy for the backbone: ``mixed_bfloat16`` on GPU when asked, else ``None``
    (the preset's float32). A mixed-precision model loaded on a CPU machine runs in float32."""
    if not config.mixed_precision:
        return None
    if not tf.config.list_physical_devices("GPU"):
        logger.warning("encoder.mixed_precision is set but TensorFlow sees no GPU: BERT runs in float32")
        return None
    return MIXED_PRECISION_POLICY
