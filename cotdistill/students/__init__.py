"""Students: the models being fine-tuned. Owns loading (the built-in tiny student, the offline
SmolLM2, any Hugging Face model, their tokenizers), the one logits path that training, evaluation and
attribution share (logits), and LoRA and gradient checkpointing (lora). May import the configuration
and the layers below it (errors, examples, paths); never data, training, evaluation or the run.
"""
