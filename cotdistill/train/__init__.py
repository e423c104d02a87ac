"""Training one student: the loop (loop: AdamW, schedule, accumulation, clipping, resume), the loss of
a batch (loss), padding-free packing (packing), several devices through torchrun with DDP or FSDP
(distributed), verified checkpoints (checkpoints), which curve values are recorded (curves), and
mirroring a run to TensorBoard, MLflow or W&B (trackers). May import students, sequences, data, the
configuration and the bottom layer (errors, files: the loop raises RunError and WriteFailed from
cotdistill.errors); never evaluation, the run orchestrator or anything above. The loop takes callbacks
(progress, validation, the write fence) from whoever calls it.
"""
