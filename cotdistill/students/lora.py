"""Students at size: LoRA adapters through `peft`, gradient checkpointing, and merging for saving.

    model = prepare_for_training(student.model, cfg.student)   # LoRA injected, checkpointing on
    ...train(model, ...)...
    model = merged(model)            # adapters folded into the weights: a plain transformers model

`prepare_for_training` keeps the transformers model itself as the thing that is trained (peft injects
its LoRA layers into it in place and freezes the rest), so the training loop, the one logits path and
the checkpoint code see the same module tree as for a full fine-tune; only the trainable parameters
(and so the optimizer state) shrink. `merged` folds the adapters into the base weights and removes
the LoRA layers: the run's `model/` is then an ordinary checkpoint that `from_pretrained` loads
(evaluation runs on the merged model, so the saved artifact predicts exactly what was evaluated).
"""

from __future__ import annotations

from cotdistill.config import StudentConfig
from cotdistill.errors import LoraError

_PEFT = "_cotdistill_peft"        # the peft wrapper, kept in the model's __dict__ (not a submodule)


def lora_config(lora: dict):
    """peft's LoraConfig for `student.lora` (already validated by StudentConfig)."""
    from peft import LoraConfig
    return LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
                      target_modules=lora["target_modules"], bias="none", task_type="CAUSAL_LM")


def apply_lora(model, lora: dict):
    """Inject LoRA adapters into `model` in place (base weights frozen); returns the same model."""
    from peft import get_peft_model
    try:
        wrapper = get_peft_model(model, lora_config(lora))
    except ValueError as e:
        family = getattr(model.config, "model_type", type(model).__name__)
        raise LoraError(f"student.lora.target_modules: {str(e).splitlines()[0]} (family {family!r}); name "
                        f"the modules to adapt, e.g. [q_proj, v_proj], or use 'all-linear'") from None
    inner = wrapper.get_base_model()
    inner.__dict__[_PEFT] = wrapper
    return inner


def has_lora(model) -> bool:
    return _PEFT in model.__dict__


def merged(model):
    """The model with its LoRA adapters folded into the weights and removed (unchanged without LoRA)."""
    wrapper = model.__dict__.pop(_PEFT, None)
    if wrapper is None:
        return model
    return wrapper.merge_and_unload()


def enable_gradient_checkpointing(model) -> None:
    """Non-reentrant checkpointing: exact gradients (the RNG state is replayed for dropout), and no
    need for inputs that require grad when the embeddings are frozen (LoRA)."""
    if not getattr(model, "supports_gradient_checkpointing", False):
        raise LoraError(f"student.gradient_checkpointing: {type(model).__name__} does not support "
                        f"gradient checkpointing; set it to false")
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def prepare_for_training(model, cfg: StudentConfig):
    """Gradient checkpointing and LoRA as configured; returns the model to train (the same object)."""
    if cfg.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    if cfg.lora is not None:
        model = apply_lora(model, cfg.lora)
    return model


def parameter_counts(model) -> dict[str, int]:
    """{"parameters": all, "trainable": those the optimizer updates}."""
    return {"parameters": sum(p.numel() for p in model.parameters()),
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad)}
