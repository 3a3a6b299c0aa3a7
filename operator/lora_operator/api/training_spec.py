"""The spec of a LoRATraining: what to train, on which data, and where the results go.

This module imports no torch: the operator validates specs and renders trainer configs
with it, and `lora-operator crds` generates the CRD schema from it. Every field's
description becomes the text that `kubectl explain` prints.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from lora_operator.api.base import ApiModel, CelRule

MODEL_URI_HELP = (
    "Accepted schemes: builtin:// (tiny random models for tests and demos; they produce noise), "
    "hf:// (a Hugging Face repo id, needs internet), s3://bucket/prefix, "
    "pvc://claim/path (a PersistentVolumeClaim mounted into the trainer), file:// (local mode)."
)
URI_PATTERN = r"^(builtin|hf|s3|https|pvc|file)://.+"
MODEL_URI_PATTERN = r"^(builtin|hf|s3|pvc|file)://.+"
# Default LoRA targets per task; peft reads "all-linear" as every Linear layer but the output head.
ALL_LINEAR = "all-linear"
IMAGE_TARGET_MODULES = ("to_q", "to_k", "to_v", "to_out.0")
TEXT_TARGET_MODULES = (ALL_LINEAR,)


class DataSource(ApiModel):
    """One place to read training files from."""

    uri: str = Field(
        pattern=URI_PATTERN,
        max_length=2048,
        description="Folder or file of training data: file://, s3://bucket/prefix, https://, pvc://claim/path.",
    )
    include: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="Glob patterns of file names to read (for example '*.png'). Empty reads every supported file.",
    )


class DatasetSpec(ApiModel):
    """Training data and how images are checked and bucketed."""

    sources: list[DataSource] = Field(min_length=1, max_length=64, description="Where the training files come from.")
    resolution: int = Field(
        default=512,
        ge=64,
        le=2048,
        description="Training resolution in pixels: the side of the square bucket. Buckets of other aspect ratios keep about this many pixels. Higher costs memory and time.",
    )
    bucketing: bool = Field(
        default=True,
        description="Group images into aspect-ratio buckets and crop each to its bucket. When false every image is centre-cropped to a square.",
    )
    max_aspect_ratio: float = Field(
        default=2.0,
        ge=1.0,
        le=8.0,
        description="Widest allowed width:height or height:width. Wider images are centre-cropped to this ratio, never stretched.",
    )
    min_side: int = Field(default=64, ge=8, le=4096, description="Images with a shorter side below this many pixels are skipped.")
    max_pixels: int = Field(
        default=100_000_000,
        ge=4096,
        le=1_000_000_000,
        description="Images whose header claims more pixels than this are skipped before decoding (decompression-bomb guard).",
    )
    max_file_bytes: int = Field(
        default=200 * 1024 * 1024,
        ge=1024,
        description="Files larger than this many bytes are skipped, and downloads stop at this size.",
    )
    background: str = Field(
        default="#ffffff",
        pattern=r"^#[0-9a-fA-F]{6}$",
        description="Colour (#rrggbb) that transparent pixels are composited onto.",
    )
    caption_extension: str = Field(
        default=".txt",
        pattern=r"^\.[A-Za-z0-9]+$",
        description="Extension of caption sidecar files: photo.png is captioned by photo.txt.",
    )
    repeats: int = Field(default=1, ge=1, le=100, description="How many times each image appears in one epoch.")


class CaptioningSpec(ApiModel):
    """Automatic captions from zero-shot tags of an open_clip model."""

    enabled: bool = Field(default=True, description="Caption images that have no sidecar caption.")
    model: str = Field(
        default="builtin://tiny-clip",
        description=(
            "open_clip model: builtin://tiny-clip, 'ARCH:PRETRAINED_TAG' such as 'ViT-B-32:laion2b_s34b_b79k' "
            "(downloaded where the cluster has internet), or a file://, pvc:// or s3:// path to a checkpoint."
        ),
    )
    trigger_word: str = Field(
        default="",
        max_length=64,
        description="Word put first in every caption; use it in prompts to call up the trained concept.",
    )
    vocabulary: list[str] = Field(
        default_factory=list,
        max_length=2000,
        description="Candidate tags. Empty uses the built-in vocabulary of styles, subjects, lighting and media.",
    )
    top_k: int = Field(default=6, ge=1, le=50, description="Keep at most this many tags per image.")
    threshold: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Keep only tags whose probability is at least this; each tag is scored against a neutral prompt, independently of the other tags.",
    )
    overwrite: bool = Field(default=False, description="Replace sidecar captions with generated ones.")
    batch_size: int = Field(default=32, ge=1, le=1024, description="Images encoded per batch.")


class LoraSpec(ApiModel):
    """Shape of the LoRA adapter."""

    rank: int = Field(default=8, ge=1, le=512, description="Rank r of the update matrices. Higher learns more detail and costs memory.")
    alpha: float = Field(default=16.0, gt=0, le=1024, description="Scale numerator: the update is multiplied by alpha / rank.")
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0, description="Dropout on the LoRA input; higher regularises more.")
    target_modules: list[str] = Field(
        default_factory=lambda: list(IMAGE_TARGET_MODULES),
        min_length=1,
        max_length=64,
        description=(
            "Names (suffixes) of the modules that get an adapter. Unset uses the task's default: the UNet attention "
            "projections to_q, to_k, to_v, to_out.0 for image; all-linear (every Linear layer except the output "
            "head) for text. all-linear is for text tasks and must be the only entry."
        ),
    )
    train_text_encoder: bool = Field(
        default=False,
        description="Also train a LoRA on the text encoder. Its embeddings are then computed at every step instead of cached.",
    )
    text_encoder_target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "out_proj"],
        min_length=1,
        max_length=64,
        description="Text-encoder modules that get an adapter when trainTextEncoder is true.",
    )
    use_rslora: bool = Field(
        default=False,
        description=(
            "Rank-stabilised LoRA (Kalajdzievski 2023): scale the update by alpha / sqrt(rank) instead of alpha / rank, "
            "so high ranks keep learning. Text tasks only."
        ),
    )
    use_dora: bool = Field(
        default=False,
        description=(
            "DoRA (Liu et al. 2024): also train a magnitude per output feature of each adapted layer. Often better at "
            "low ranks, slower per step. Text tasks only."
        ),
    )

    cel_rules = (
        CelRule(
            rule="!has(self.targetModules) || !('all-linear' in self.targetModules) || size(self.targetModules) == 1",
            message="all-linear must be the only entry of targetModules",
            field_path=".targetModules",
        ),
    )

    @model_validator(mode="after")
    def _check_all_linear_alone(self) -> LoraSpec:
        if ALL_LINEAR in self.target_modules and len(self.target_modules) > 1:
            raise ValueError(
                f"lora.targetModules {self.target_modules} mixes all-linear with module names: "
                "use [all-linear] alone or list the modules"
            )
        return self


class TrainingSpec(ApiModel):
    """Optimiser, schedule and loss options."""

    learning_rate: float = Field(default=2e-4, gt=0, le=1.0, description="Peak learning rate of AdamW.")
    text_encoder_learning_rate: float | None = Field(
        default=None, gt=0, le=1.0, description="Learning rate of the text-encoder LoRA; defaults to learningRate."
    )
    scheduler: Literal["constant", "constant_with_warmup", "linear", "cosine"] = Field(
        default="constant_with_warmup", description="Learning-rate schedule after warm-up."
    )
    warmup_steps: int = Field(default=0, ge=0, le=100_000, description="Optimiser steps of linear warm-up.")
    batch_size: int = Field(default=4, ge=1, le=256, description="Images per forward pass. Lower it when the GPU runs out of memory.")
    gradient_accumulation: int = Field(
        default=1, ge=1, le=256, description="Forward passes per optimiser step; the effective batch is batchSize x gradientAccumulation."
    )
    max_steps: int | None = Field(default=None, ge=1, le=1_000_000, description="Optimiser steps to train. Set this or epochs.")
    epochs: int | None = Field(default=None, ge=1, le=10_000, description="Passes over the dataset. Set this or maxSteps; with neither, 10 epochs.")
    seed: int = Field(default=42, ge=0, le=2**31 - 1, description="Seed of data order, noise and initialisation; the same seed reproduces the run.")
    weight_decay: float = Field(default=1e-2, ge=0.0, le=1.0, description="AdamW weight decay.")
    max_grad_norm: float = Field(default=1.0, gt=0, le=1000.0, description="Gradients are clipped to this global norm.")
    min_snr_gamma: float | None = Field(
        default=5.0,
        gt=0,
        le=100.0,
        description="Min-SNR loss weighting gamma (Hang et al. 2023); 5 is the paper's value. Unset to weight every timestep equally.",
    )
    noise_offset: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Offset noise strength; about 0.05 helps very dark or bright images."
    )
    gradient_checkpointing: bool = Field(default=False, description="Recompute activations in the backward pass: less memory, about 20-30% slower.")
    mixed_precision: Literal["no", "fp16", "bf16"] = Field(
        default="no",
        description="Precision of the frozen weights and activations on a GPU; the LoRA weights stay in fp32. Ignored on the CPU.",
    )
    cache_latents: bool = Field(
        default=True, description="Encode every image with the VAE once before training instead of at every step."
    )
    checkpoint_every: int = Field(default=100, ge=1, le=1_000_000, description="Save a resumable checkpoint every this many optimiser steps.")
    keep_checkpoints: int = Field(default=2, ge=1, le=100, description="How many of the newest checkpoints to keep.")
    log_every: int = Field(default=1, ge=1, le=10_000, description="Record the loss every this many optimiser steps.")

    cel_rules = (
        CelRule(
            rule="!(has(self.maxSteps) && has(self.epochs))",
            message="set either maxSteps or epochs, not both",
        ),
        CelRule(
            rule="!has(self.maxSteps) || self.warmupSteps < self.maxSteps",
            message="warmupSteps must be smaller than maxSteps",
            field_path=".warmupSteps",
        ),
    )

    @model_validator(mode="after")
    def _check_cross_fields(self) -> TrainingSpec:
        if self.max_steps is not None and self.epochs is not None:
            raise ValueError("set either training.maxSteps or training.epochs, not both")
        if self.max_steps is not None and self.warmup_steps >= self.max_steps:
            raise ValueError(
                f"training.warmupSteps ({self.warmup_steps}) must be smaller than training.maxSteps ({self.max_steps})"
            )
        return self


class PreviewSpec(ApiModel):
    """Previews made during training with fixed seeds: images for image tasks, completions for text tasks."""

    every: int = Field(default=200, ge=1, le=1_000_000, description="Render previews every this many optimiser steps, and at the end.")
    prompts: list[str] = Field(
        default_factory=list,
        max_length=16,
        description=(
            "Prompts to render or complete. Empty uses, for image tasks, the trigger word with the first captions "
            "of the dataset and, for text tasks, the prompts of the first evaluation records."
        ),
    )
    count: int = Field(default=2, ge=0, le=16, description="Previews per round when prompts is empty; 0 turns previews off.")
    seed: int = Field(default=1234, ge=0, le=2**31 - 1, description="Seed of preview noise, the same at every round so rounds compare.")
    inference_steps: int = Field(default=20, ge=1, le=200, description="Denoising steps per preview.")
    guidance_scale: float = Field(default=7.5, ge=0.0, le=50.0, description="Classifier-free guidance scale of previews.")
    negative_prompt: str = Field(default="", max_length=1000, description="Negative prompt of previews.")
    max_new_tokens: int = Field(
        default=64, ge=1, le=4096, description="Text tasks: tokens generated per preview completion."
    )
    temperature: float = Field(
        default=0.7,
        gt=0.0,
        le=5.0,
        description="Text tasks: sampling temperature of the sampled completion (the greedy one ignores it).",
    )
    top_p: float = Field(
        default=0.9,
        gt=0.0,
        le=1.0,
        description="Text tasks: nucleus sampling probability mass of the sampled completion.",
    )


class TextSpec(ApiModel):
    """Options of text tasks: tokenisation, loss, evaluation and export of a causal language model LoRA."""

    max_seq_length: int = Field(
        default=1024,
        ge=16,
        le=131_072,
        description="Tokens per training sequence. Longer records are handled by overlong; memory grows with it.",
    )
    overlong: Literal["split", "truncate", "skip"] = Field(
        default="split",
        description=(
            "What happens to a record longer than maxSeqLength: split into consecutive windows, truncate to the first "
            "maxSeqLength tokens, or skip. The manifest counts each case."
        ),
    )
    packing: bool = Field(
        default=False,
        description="Pack several short records into each sequence of maxSeqLength tokens: fewer padding tokens, faster epochs.",
    )
    chat_template: str = Field(
        default="",
        max_length=32_768,
        description=(
            "Jinja chat template for records with messages. Empty uses the base model's template, or a ChatML "
            "template (<|im_start|>role ... <|im_end|>) when the model has none."
        ),
    )
    completion_only_loss: bool = Field(
        default=True,
        description="Train only on completions and assistant turns, not on prompts, system and user turns.",
    )
    deduplicate: bool = Field(default=True, description="Drop records that repeat an earlier record exactly.")
    eval_fraction: float = Field(
        default=0.1,
        ge=0.0,
        le=0.5,
        description="Share of the records held out for evaluation (at least one when above 0); 0 turns evaluation off.",
    )
    eval_every: int = Field(
        default=100, ge=1, le=1_000_000, description="Compute eval loss and perplexity every this many optimiser steps, and at the end."
    )
    added_tokens: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=list,
        max_length=256,
        description=(
            "Special tokens added to the tokenizer. Their embedding rows are trained, and the adapter stores the "
            "resized vocabulary and the tokenizer."
        ),
    )
    quantization: Literal["none", "4bit"] = Field(
        default="none",
        description="4bit loads the frozen base model in 4-bit NF4 with bitsandbytes (QLoRA). Needs an NVIDIA GPU.",
    )
    merge_weights: bool = Field(
        default=False,
        description="Also export the base model with the adapter merged in, under weights/merged/. As large as the base model.",
    )


class OutputSpec(ApiModel):
    """Where the run's artifacts go and in which formats."""

    bucket: str = Field(
        default="",
        max_length=63,
        description="S3 bucket of the artifacts. Empty uses the operator's default bucket (in local mode, the output folder).",
    )
    prefix: str = Field(
        default="",
        max_length=512,
        description="Key prefix inside the bucket; the run writes under PREFIX/NAMESPACE/NAME/UID/.",
    )
    name: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9._-]{0,100}$",
        description="File name stem of the exported weights. Empty uses the resource name.",
    )
    formats: list[Literal["kohya", "diffusers"]] = Field(
        default_factory=lambda: ["kohya", "diffusers"],
        min_length=1,
        description=(
            "Export formats of image tasks: kohya (one .safetensors for A1111, ComfyUI, Forge) and diffusers "
            "(load_lora_weights). Text tasks always export a peft adapter (see text.mergeWeights)."
        ),
    )
    delete_on_removal: bool = Field(default=False, description="Delete the run's artifacts when the resource is deleted.")


class Toleration(ApiModel):
    """A Kubernetes toleration of the trainer pod."""

    key: str = Field(default="", max_length=317, description="Taint key; empty with operator Exists matches every taint.")
    operator: Literal["Exists", "Equal"] = Field(default="Equal", description="Exists or Equal.")
    value: str = Field(default="", max_length=63, description="Taint value, for operator Equal.")
    effect: Literal["", "NoSchedule", "PreferNoSchedule", "NoExecute"] = Field(
        default="", description="Taint effect to tolerate; empty tolerates every effect."
    )
    toleration_seconds: int | None = Field(
        default=None, ge=0, description="For NoExecute: seconds the pod stays bound after the taint appears."
    )


class ResourcesSpec(ApiModel):
    """Compute for the trainer pod."""

    gpus: int = Field(default=1, ge=0, le=16, description="GPUs for the trainer. More than 1 runs one process per GPU.")
    gpu_resource_name: str = Field(
        default="",
        max_length=253,
        description=(
            "Extended resource that counts GPUs, for example nvidia.com/mig-1g.10gb for a MIG profile. "
            "Empty uses the operator's default (nvidia.com/gpu unless the installation sets another)."
        ),
    )
    cpu: str = Field(default="4", pattern=r"^[0-9]+(\.[0-9]+)?m?$", description="CPU request and limit, a Kubernetes quantity.")
    memory: str = Field(default="16Gi", pattern=r"^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$", description="Memory request and limit, a Kubernetes quantity.")
    node_selector: dict[str, str] = Field(default_factory=dict, description="Node labels the trainer pod must match.")
    tolerations: list[Toleration] = Field(default_factory=list, max_length=32, description="Tolerations of the trainer pod.")
    priority_class_name: str = Field(default="", max_length=253, description="PriorityClass of the trainer pod.")


class RetrySpec(ApiModel):
    """What happens after a failed attempt."""

    max_attempts: int = Field(default=3, ge=1, le=20, description="Attempts in total, each resuming from the newest checkpoint.")
    halve_batch_on_oom: bool = Field(
        default=True,
        description="After an out-of-memory kill, halve batchSize and double gradientAccumulation so the effective batch stays.",
    )


# Spec fields that decide what the weights are; suspend, retry, resources, queueName,
# activeDeadlineSeconds and previews stay editable.
IMMUTABLE_SPEC_FIELDS = ("task", "baseModel", "baseModelRevision", "dataset", "captioning", "lora", "training", "text", "output")


class LoRATrainingSpec(ApiModel):
    """What to train, on which data, and where the results go."""

    task: Literal["image", "text"] = Field(default="image", description="image: Stable Diffusion LoRA. text: causal language model LoRA.")
    base_model: str = Field(pattern=MODEL_URI_PATTERN, max_length=2048, description=f"Base model to adapt. {MODEL_URI_HELP}")
    base_model_revision: str = Field(default="", max_length=128, description="Revision (branch, tag or commit) of an hf:// base model.")
    dataset: DatasetSpec = Field(description="Training data.")
    captioning: CaptioningSpec = Field(default_factory=CaptioningSpec, description="Automatic captions.")
    lora: LoraSpec = Field(default_factory=LoraSpec, description="Shape of the adapter.")
    training: TrainingSpec = Field(default_factory=TrainingSpec, description="Optimiser and loss options.")
    previews: PreviewSpec = Field(default_factory=PreviewSpec, description="Previews during training.")
    text: TextSpec = Field(default_factory=TextSpec, description="Options of text tasks; image tasks ignore them.")
    output: OutputSpec = Field(default_factory=OutputSpec, description="Where artifacts go.")
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec, description="Compute for the trainer pod.")
    queue_name: str = Field(
        default="",
        max_length=253,
        description="Kueue LocalQueue; the Job then waits for Kueue's admission. Empty uses the operator's default queue, if any.",
    )
    retry: RetrySpec = Field(default_factory=RetrySpec, description="Retries of failed attempts.")
    suspend: bool = Field(default=False, description="Stop the running attempt after a checkpoint; set back to false to resume.")
    active_deadline_seconds: int = Field(
        default=86_400, ge=60, le=30 * 86_400, description="Seconds an attempt may run before it is stopped and failed."
    )

    cel_rules = (
        CelRule(
            rule="self.task != 'image' || self.dataset.resolution % 8 == 0",
            message="dataset.resolution must be a multiple of 8 for image tasks",
            field_path=".dataset.resolution",
        ),
        CelRule(
            rule="self.task == 'text' || !has(self.lora) || !has(self.lora.targetModules) "
            "|| !('all-linear' in self.lora.targetModules)",
            message="lora.targetModules all-linear is for text tasks; name the UNet modules for image tasks",
            field_path=".lora.targetModules",
        ),
        CelRule(
            rule="self.task == 'text' || !has(self.lora) || "
            "!((has(self.lora.useRslora) && self.lora.useRslora) || (has(self.lora.useDora) && self.lora.useDora))",
            message="lora.useRslora and lora.useDora are for text tasks; set them to false for image tasks",
            field_path=".lora",
        ),
        CelRule(
            rule="self.task == 'image' || !has(self.lora) || !has(self.lora.trainTextEncoder) || !self.lora.trainTextEncoder",
            message="lora.trainTextEncoder is for image tasks; a text task adapts the language model itself",
            field_path=".lora.trainTextEncoder",
        ),
    ) + tuple(
        # A resumed attempt continues from checkpoints of the original run, so the fields
        # that shape the weights cannot change; create a new LoRATraining instead.
        CelRule(
            rule=f"!has(oldSelf.{field}) && !has(self.{field}) || "
            f"has(oldSelf.{field}) && has(self.{field}) && self.{field} == oldSelf.{field}",
            message=f"spec.{field} cannot change after creation because a resumed run must train the same thing; "
            "create a new LoRATraining instead",
            field_path=f".{field}",
        )
        for field in IMMUTABLE_SPEC_FIELDS
    )

    @model_validator(mode="after")
    def _check_cross_fields(self) -> LoRATrainingSpec:
        if self.task == "image" and self.dataset.resolution % 8:
            raise ValueError(
                f"dataset.resolution ({self.dataset.resolution}) must be a multiple of 8 for image tasks; "
                f"use {self.dataset.resolution // 8 * 8}"
            )
        if self.task == "image":
            _check_image_lora(self.lora)
        elif self.lora.train_text_encoder:
            raise ValueError("lora.trainTextEncoder is for image tasks: remove it, a text task adapts the language model itself")
        return self

    @model_validator(mode="after")
    def _apply_task_target_modules(self) -> LoRATrainingSpec:
        # LoraSpec's own default is the image one; a text task that leaves targetModules unset gets the
        # text default instead. Set explicitly, it round-trips through to_wire unchanged.
        if self.task == "text" and "target_modules" not in self.lora.model_fields_set:
            self.lora = self.lora.model_copy(update={"target_modules": list(TEXT_TARGET_MODULES)})
        return self


def _check_image_lora(lora: LoraSpec) -> None:
    if ALL_LINEAR in lora.target_modules:
        raise ValueError(
            "lora.targetModules all-linear is for text tasks: name the UNet modules for image tasks, "
            f"for example {list(IMAGE_TARGET_MODULES)}"
        )
    if lora.use_rslora or lora.use_dora:
        raise ValueError("lora.useRslora and lora.useDora are for text tasks: set them to false for image tasks")
