"""Typed configs: dataclass schemas + YAML files + ``key=value`` overrides (OmegaConf structured configs).

Every YAML file in ``configs/`` names its ``recipe`` (grpo | sft | eval | serve | data); the recipe picks the schema.
Unknown keys are errors that name the key and the file. Derived values are filled in ``__post_init__``. Configs are
frozen dataclasses (they cross process boundaries to Ray actors): change one with ``dataclasses.replace``.

Run: ``viva config show --config configs/grpo/toy.yaml grpo.group_size=8``
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, get_args

from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException


SamplerKind = Literal["sde", "cps", "ode"]  # the denoising step: Flow-SDE, coefficients-preserving SDE, or ODE


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the file and the key."""


def _require(ok: bool, key: str, value: Any, allowed: str) -> None:
    """Raise ConfigError naming ``key``, its ``value`` and the ``allowed`` range unless ``ok``."""
    if not ok:
        raise ConfigError(f"{key} must be {allowed}, got {value!r}")


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


# ----------------------------------------------------------------------------------------------------------------
# Shared sections
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoRAConfig:
    """peft LoRA on the DiT's attention projections (VIVA §3.3: Edit-GRPO trains a LoRA)."""

    rank: int = 64
    alpha: float = 128.0
    dropout: float = 0.0
    init: str = "gaussian"  # peft init_lora_weights: gaussian | true (kaiming + zero B) | pissa ...
    # Regex over module names; it picks the joint-attention projections of the dual-stream blocks (video + text
    # streams) and the single-stream blocks, and deliberately skips context_embedder.token_refiner.*.
    target_modules: str = (
        r".*(transformer_blocks|single_transformer_blocks)\.\d+\.attn\."
        r"(to_q|to_k|to_v|to_out\.0|add_q_proj|add_k_proj|add_v_proj|to_add_out)"
    )

    def __post_init__(self) -> None:
        if self.rank <= 0:
            raise ConfigError(f"lora.rank must be > 0, got {self.rank}")
        _require(_finite(self.alpha) and self.alpha > 0, "lora.alpha", self.alpha, "a finite number > 0")
        _require(_finite(self.dropout) and 0 <= self.dropout < 1, "lora.dropout", self.dropout, "in [0, 1)")


@dataclass(frozen=True)
class ModelConfig:
    """Which DiT / VLM / codec to build, and from where."""

    preset: str = "tiny"  # tiny | hunyuan-13b (see viva.models.presets)
    # A viva base checkpoint directory (written by `viva sft`); None = build the preset (random or pretrained DiT).
    base_checkpoint: Optional[str] = None
    # Pretrained T2V transformer (hub id or local path) used to initialise the DiT when no base checkpoint is given.
    dit_pretrained: Optional[str] = None
    vlm: str = "tiny"  # tiny | llava-llama3-8b | a hub id / local path of a LlavaForConditionalGeneration
    codec: str = "pixel"  # pixel (exact space-to-depth) | hunyuan-vae
    codec_pretrained: Optional[str] = None  # hub id / local path of AutoencoderKLHunyuanVideo (codec=hunyuan-vae)
    device: str = "cpu"
    dtype: str = "float32"  # float32 | bfloat16 | float16 (weights and autocast on GPU)
    vlm_cache_size: int = 4096  # entries of the (instruction, first frame, reference) -> hidden states cache
    backend: str = "eager"  # eager | compile | tensorrt
    allow_backend_fallback: bool = False  # if the backend is unavailable: error (False) or eager with a warning
    # Embedded guidance fed to a guidance-distilled DiT (HunyuanVideo has guidance_embeds); x1000 like diffusers.
    embedded_guidance: float = 6.0
    # What the DiT outputs: velocity (pretrained T2V convention) | source_x0 (x0 as a residual on the source) |
    # source_affine (plus a per-cell colour transform of the source; pixel codec; see viva.models.dit). A base
    # checkpoint records its own and overrides this.
    prediction: str = "velocity"
    # Keep only the user turn of the VLM's hidden states (from the first image token on), dropping the system-prompt
    # tokens, as HunyuanVideo crops its prompt template. A base checkpoint records its own and overrides this.
    vlm_crop_system: bool = False
    # HunyuanVideo's pooled text vector from the VLM tokens: mean (masked mean + linear) | attention (learned-query
    # attention pooling, viva.models.dit.AttentionPool). A base checkpoint records its own.
    text_pooling: str = "mean"
    # Feature maps per pixel that the DiT hands a small convolutional head refining x0 at pixel resolution
    # (viva.models.dit.PixelHead); 0 = off. Pixel codec, source_x0 | source_affine. A base checkpoint records its own.
    pixel_head: int = 0

    def __post_init__(self) -> None:
        _require(self.prediction in ("velocity", "source_x0", "source_affine"), "model.prediction", self.prediction,
                 "one of velocity | source_x0 | source_affine")
        if self.prediction == "source_affine" and self.codec != "pixel":
            raise ConfigError(f"model.prediction: source_affine needs model.codec: pixel (it transforms the colours "
                              f"of each latent cell's pixels), got model.codec {self.codec!r}")
        _require(self.text_pooling in ("mean", "attention"), "model.text_pooling", self.text_pooling,
                 "one of mean | attention")
        _require(self.pixel_head >= 0, "model.pixel_head", self.pixel_head, ">= 0 (feature maps per pixel; 0 = off)")
        if self.pixel_head and (self.codec != "pixel" or self.prediction == "velocity"):
            raise ConfigError(f"model.pixel_head: {self.pixel_head} needs model.codec: pixel and model.prediction: "
                              f"source_x0 | source_affine, got {self.codec!r} and {self.prediction!r}")
        _require(self.dtype in ("float32", "bfloat16", "float16"), "model.dtype", self.dtype,
                 "one of float32 | bfloat16 | float16")
        _require(self.backend in ("eager", "compile", "tensorrt"), "model.backend", self.backend,
                 "one of eager | compile | tensorrt")
        _require(self.vlm_cache_size >= 0, "model.vlm_cache_size", self.vlm_cache_size, ">= 0")


@dataclass(frozen=True)
class SamplerConfig:
    """Denoising: schedule, guidance and the stochastic step used for rollouts (sigma = 1 is pure noise)."""

    num_steps: int = 50
    shift: float = 7.0  # HunyuanVideo's timestep shift
    guidance_scale: float = 2.0  # CFG on the instruction only; the source video is in both branches
    kind: SamplerKind = "sde"  # sde (Flow-GRPO eq. 14) | cps (coefficients-preserving) | ode
    eta: float = 0.7  # noise level of the SDE / CPS steps
    # SDE window: only steps [window_start, window_start + window_size) are stochastic (and trained); the rest are
    # ODE steps (MixGRPO / Flow-GRPO-Fast). window_size = 0 means every step is stochastic.
    window_size: int = 0
    window_start: int = 0
    random_window: bool = False  # draw window_start per prompt from the rollout seed

    def __post_init__(self) -> None:
        if self.kind not in get_args(SamplerKind):
            raise ConfigError(f"sampler.kind must be sde | cps | ode, got {self.kind!r}")
        if self.num_steps <= 0:
            raise ConfigError(f"sampler.num_steps must be > 0, got {self.num_steps}")
        if not self.shift > 0:
            raise ConfigError(f"sampler.shift must be > 0, got {self.shift}")
        if self.eta < 0 or (self.kind == "cps" and self.eta > 1):
            raise ConfigError(f"sampler.eta must be >= 0 (and <= 1 for kind=cps), got {self.eta}")
        if self.window_size < 0 or self.window_start < 0 or self.window_start + self.window_size > self.num_steps:
            raise ConfigError(
                f"sampler window [{self.window_start}, {self.window_start + self.window_size}) "
                f"does not fit in {self.num_steps} steps"
            )


@dataclass(frozen=True)
class RewardSpec:
    """One reward model in the weighted sum (VIVA eq. 7)."""

    name: str = MISSING  # registry name (clip_if, clip_sp, pickscore, ...) or a dotted path pkg.module:Class
    weight: float = 1.0
    # Model-specific options passed to the reward's constructor (e.g. checkpoint paths, micro_batch_size).
    options: Any = field(default_factory=dict)
    num_actors: int = 1  # reward actors in this model's pool (Ray)
    num_gpus: float = 0.0
    num_cpus: float = 0.25
    runtime_env: Any = field(default_factory=dict)  # Ray runtime_env for this pool (e.g. a vLLM judge's pins)

    def __post_init__(self) -> None:
        _require(_finite(self.weight), f"rewards[{self.name}].weight", self.weight, "a finite number")
        _require(self.num_actors >= 1, f"rewards[{self.name}].num_actors", self.num_actors, ">= 1")
        _require(self.num_cpus >= 0 and self.num_gpus >= 0, f"rewards[{self.name}].num_cpus/num_gpus",
                 (self.num_cpus, self.num_gpus), ">= 0")


@dataclass(frozen=True)
class DataConfig:
    """Where prompts / pairs come from: the procedural toy world or a JSONL manifest."""

    source: str = "toyworld"  # toyworld | manifest
    manifest: Optional[str] = None  # JSONL manifest path (source=manifest)
    seed: int = 0
    num_frames: int = 8
    height: int = 32
    width: int = 32
    # Toy world: which edit types this split draws from, and how many samples make one epoch.
    edit_types: List[str] = field(default_factory=lambda: ["add", "remove", "replace", "recolor", "background"])
    epoch_size: int = 256
    rejects_file: Optional[str] = None  # bad samples are reported here (JSONL) and skipped
    # Manifest of real videos (e.g. `viva data triplets`): cut each source to num_frames (every frame_stride-th
    # frame from the first) and centre-crop/resize it to height x width as it loads (viva.data.clips).
    fit_clip: bool = False
    frame_stride: int = 1
    # Toy-world split the recipe draws from (train | heldout | hybrid); None = the recipe's default
    # (grpo/sft train on "train", evaluation on "heldout"). A manifest is its own split.
    split: Optional[str] = None

    def __post_init__(self) -> None:
        if self.source not in ("toyworld", "manifest"):
            raise ConfigError(f"data.source must be toyworld | manifest, got {self.source!r}")
        known = ("add", "remove", "replace", "recolor", "background", "hybrid", "reference", "style")  # EDIT_TYPES
        for t in self.edit_types:
            if t not in known:
                raise ConfigError(f"data.edit_types: unknown edit type {t!r}; expected one of {known}")
        if self.epoch_size <= 0 or min(self.num_frames, self.height, self.width, self.frame_stride) <= 0:
            raise ConfigError("data.epoch_size, num_frames, height, width and frame_stride must be > 0")
        _require(not self.fit_clip or self.source == "manifest", "data.fit_clip", self.fit_clip,
                 "false unless data.source=manifest")


@dataclass(frozen=True)
class ClusterConfig:
    """Where Ray processes go. address=None starts an embedded local cluster bound to 127.0.0.1."""

    address: Optional[str] = None  # None: embedded | "auto" | "ray://host:10001" | "host:6379"
    num_cpus: Optional[int] = None  # embedded cluster's CPUs (None: os.cpu_count())
    num_gpus: int = 0
    colocate: bool = True  # rollout + learner share one placement group bundle set vs disaggregated
    num_rollout_actors: int = 1
    rollout_num_gpus: float = 0.0
    rollout_num_cpus: float = 0.25
    num_learner_workers: int = 1
    learner_num_gpus: float = 0.0
    learner_num_cpus: float = 0.25
    max_restarts: int = 3  # per actor, before the run stops with an error
    max_consecutive_failures: int = 3  # failed attempts at one group before the run stops
    sync_timeout_s: float = 60.0
    call_timeout_s: float = 600.0
    placement_timeout_s: float = 30.0  # wait for placement groups, then ResourceShortfall naming the role
    runtime_env: Any = field(default_factory=dict)  # job-level Ray runtime_env (embedded: src/ is added to PYTHONPATH)
    object_store_memory: Optional[int] = None  # embedded cluster's object store bytes (None: Ray's default, 30% RAM)
    log_to_driver: bool = True  # forward actor stdout/stderr to the driver
    # torch intra-op threads in each rollout / learner process (None: torch's default; Ray gives fractional-CPU
    # actors 1). CPU matmul results depend on the thread count, so bit-identical runs need the same value.
    torch_threads: Optional[int] = None
    # Ulysses degree of the rollout: this many consecutive rollout actors form one process group and act as ONE
    # logical actor, each holding 1/degree of every sample's video tokens (viva.models.sequence_parallel); must
    # divide num_rollout_actors and the DiT's head count. Supported with model.backend=eager only.
    rollout_sequence_parallel: int = 1

    def __post_init__(self) -> None:
        for key in ("num_rollout_actors", "num_learner_workers", "max_consecutive_failures",
                    "rollout_sequence_parallel"):
            _require(getattr(self, key) >= 1, f"cluster.{key}", getattr(self, key), ">= 1")
        for key in ("max_restarts", "num_gpus", "rollout_num_gpus", "rollout_num_cpus", "learner_num_gpus",
                    "learner_num_cpus"):
            _require(getattr(self, key) >= 0, f"cluster.{key}", getattr(self, key), ">= 0")
        for key in ("sync_timeout_s", "call_timeout_s", "placement_timeout_s"):
            v = getattr(self, key)
            _require(_finite(v) and v > 0, f"cluster.{key}", v, "> 0 seconds")
        sp = self.rollout_sequence_parallel
        _require(self.num_rollout_actors % sp == 0, "cluster.rollout_sequence_parallel", sp,
                 f"a divisor of cluster.num_rollout_actors={self.num_rollout_actors} (actors of one "
                 f"sequence-parallel group)")


@dataclass(frozen=True)
class LoggingConfig:
    """Metrics sinks and artefacts."""

    wandb: bool = True
    wandb_mode: str = "offline"  # offline | online | disabled
    wandb_project: str = "viva"
    sample_every: int = 0  # write source|edit mp4 every N steps (0 = never)
    progress: bool = True


# ----------------------------------------------------------------------------------------------------------------
# Recipes
# ----------------------------------------------------------------------------------------------------------------


ADV_STD = ("group", "pooled")  # grpo.adv_std values (viva.learner.advantages.group_advantages)
KL_STEPS = ("window", "all")  # grpo.kl_steps values (viva.learner.learner.Learner.ode_kl_loss)


@dataclass(frozen=True)
class GRPOSection:
    """Edit-GRPO hyper-parameters (VIVA §3.3, eqs. 8–13)."""

    steps: int = 10  # learner updates
    prompts_per_step: int = 4
    group_size: int = 4  # G edits per prompt
    lr: float = 1e-4
    weight_decay: float = 0.0
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    clip_range: float = 1e-4  # PPO ratio clip (Flow-GRPO uses 1e-4 on per-step ratios)
    kl_coef: float = 0.01
    # Where the KL to the reference is taken: "window" = the trained (SDE-window) steps only; "all" = every denoising
    # step, the ODE steps scored with the Flow-SDE Gaussian at sampler.eta, so the adapter's change of the
    # deterministic steps (which decide the final video but have no log-prob) is anchored too (docs/grpo.md).
    kl_steps: str = "window"
    adv_clip_max: float = 5.0
    adv_eps: float = 1e-4
    # Advantage scale: "group" = each group's own reward std (GRPO, eq. 11); "pooled" = one std over all the step's
    # group-centred rewards, so near-constant groups (rollouts that barely differ) get small advantages, not noise
    # scaled up to unit size (docs/grpo.md).
    adv_std: str = "group"
    inner_epochs: int = 1
    minibatch_size: int = 4  # samples per gradient step inside one update
    max_grad_norm: float = 1.0
    timestep_fraction: float = 1.0  # fraction of the SDE-window steps trained per sample
    max_staleness: int = 0  # 0 = synchronous; k >= 1 overlaps rollouts of step n+k with training of step n
    eval_every: int = 0
    eval_prompts: int = 8
    checkpoint_every: int = 0

    def __post_init__(self) -> None:
        for key in ("steps", "prompts_per_step", "inner_epochs", "minibatch_size", "eval_prompts"):
            _require(getattr(self, key) >= 1, f"grpo.{key}", getattr(self, key), ">= 1")
        _require(self.group_size >= 2, "grpo.group_size", self.group_size,
                 ">= 2 (advantages are normalised within a group)")
        for key in ("max_staleness", "eval_every", "checkpoint_every"):
            _require(getattr(self, key) >= 0, f"grpo.{key}", getattr(self, key), ">= 0")
        for key in ("lr", "clip_range", "adv_clip_max", "adv_eps", "max_grad_norm"):
            v = getattr(self, key)
            _require(_finite(v) and v > 0, f"grpo.{key}", v, "a finite number > 0")
        for key in ("weight_decay", "kl_coef"):
            v = getattr(self, key)
            _require(_finite(v) and v >= 0, f"grpo.{key}", v, "a finite number >= 0")
        _require(self.adv_std in ADV_STD, "grpo.adv_std", self.adv_std, " | ".join(ADV_STD))
        _require(self.kl_steps in KL_STEPS, "grpo.kl_steps", self.kl_steps, " | ".join(KL_STEPS))
        _require(_finite(self.timestep_fraction) and 0 < self.timestep_fraction <= 1, "grpo.timestep_fraction",
                 self.timestep_fraction, "in (0, 1]")
        _require(len(self.betas) == 2 and all(_finite(b) and 0 <= b < 1 for b in self.betas), "grpo.betas",
                 list(self.betas), "two numbers in [0, 1)")


@dataclass(frozen=True)
class LearnerConfig:
    """How the Edit-GRPO learner lays its DiT over its ranks (docs/scale.md): FSDP2, mixed precision, recompute, SP."""

    # FSDP2 (fully_shard per DiT block + the root) over the cluster.num_learner_workers ranks, replacing the gradient
    # all-reduce by FSDP's reduce-scatter. With one learner rank it changes nothing.
    fsdp: bool = False
    param_dtype: str = "bfloat16"  # FSDP mixed precision: dtype of the gathered weights in forward / backward
    reduce_dtype: str = "float32"  # FSDP mixed precision: dtype of the gradient reduce-scatter
    reshard_after_forward: bool = True  # free each block's gathered weights after its forward (re-gather in backward)
    activation_checkpointing: bool = False  # recompute each DiT block in backward (diffusers gradient checkpointing)
    # Ulysses degree: this many consecutive learner ranks share every sample, each holding 1/degree of its video
    # tokens (viva.models.sequence_parallel); must divide cluster.num_learner_workers and the DiT's head count.
    sequence_parallel: int = 1

    def __post_init__(self) -> None:
        for key in ("param_dtype", "reduce_dtype"):
            _require(getattr(self, key) in ("float32", "bfloat16", "float16"), f"learner.{key}", getattr(self, key),
                     "one of float32 | bfloat16 | float16")
        _require(self.sequence_parallel >= 1, "learner.sequence_parallel", self.sequence_parallel, ">= 1")


@dataclass(frozen=True)
class GRPOConfig:
    """`viva grpo` — distributed Edit-GRPO."""

    recipe: str = "grpo"
    seed: int = 0
    output_dir: str = "runs/grpo"
    resume: bool = False
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    grpo: GRPOSection = field(default_factory=GRPOSection)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    rewards: List[RewardSpec] = field(default_factory=list)
    data: DataConfig = field(default_factory=DataConfig)
    eval_data: Optional[DataConfig] = None
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def __post_init__(self) -> None:
        workers = self.cluster.num_learner_workers
        _require(self.grpo.prompts_per_step % workers == 0, "grpo.prompts_per_step", self.grpo.prompts_per_step,
                 f"a multiple of cluster.num_learner_workers={workers} (whole groups per learner rank)")
        sp = self.learner.sequence_parallel
        _require(workers % sp == 0, "learner.sequence_parallel", sp,
                 f"a divisor of cluster.num_learner_workers={workers} (ranks of one sequence-parallel group)")
        if self.grpo.kl_steps == "all" and self.grpo.kl_coef > 0:
            # ODE steps are scored with the Flow-SDE Gaussian at sampler.eta: eta = 0 would give it std 0.
            _require(self.sampler.eta > 0, "sampler.eta", self.sampler.eta, "> 0 when grpo.kl_steps = all")
        if self.cluster.rollout_sequence_parallel > 1:
            # The compile / TensorRT backends trace the attention before the Ulysses processors are installed.
            _require(self.model.backend == "eager", "model.backend", self.model.backend,
                     "eager when cluster.rollout_sequence_parallel > 1")


@dataclass(frozen=True)
class SFTSection:
    """Supervised fine-tuning (VIVA §3.2, eq. 3)."""

    steps: int = 1000
    batch_size: int = 8
    lr: float = 3e-4
    weight_decay: float = 0.0
    warmup_steps: int = 50
    schedule: str = "cosine"  # constant | cosine | linear
    max_grad_norm: float = 1.0
    mask_weight: float = 1.0  # w_m in (1 + w_m * M) * L_FM; 0 disables the masked weighting
    # none: eq. 3 averaged over the whole latent; area: the masked term averaged over each sample's edit region, so a
    # small object edit weighs as much as a background change (viva.sft.loss).
    mask_normalization: str = "none"
    # velocity: ||v - v*||^2 (rectified flow); x0: ||x0_hat - x0||^2 = sigma^2 ||v - v*||^2, the weighting that stays
    # finite for prediction=source_x0 (whose velocity divides by sigma).
    loss_space: str = "velocity"
    timestep_sampling: str = "logit_normal"  # uniform | logit_normal | shifted
    timestep_shift: float = 3.0
    # Refinement phase: steps >= ``refine_from_step`` (0-based; None = no phase) train with ``refine_timestep_shift``
    # (shifted sampling) and the lr scaled by ``refine_lr / lr`` (None keeps the main phase's value) — e.g. a high
    # shift first, where the edit must come from the instruction, then low/mid-noise steps that sharpen it
    # (docs/sft.md, measured). A shorter run (sft.steps below it) simply never reaches the phase.
    refine_from_step: Optional[int] = None
    refine_timestep_shift: Optional[float] = None
    refine_lr: Optional[float] = None
    # Curriculum phase: steps < ``curriculum_steps`` draw image pairs of ``curriculum_edit_types`` only (toy world),
    # e.g. the object edits whose instruction-word -> pixels binding the full mix learns late (docs/sft.md).
    curriculum_steps: int = 0
    curriculum_edit_types: List[str] = field(default_factory=lambda: ["add", "recolor", "replace"])
    image_prob: float = 0.6  # probability a batch is drawn from image (1-frame) pairs (paper: 0.6)
    trainable: str = "full"  # full | projector_refiner | lora
    ema_decay: float = 0.0  # 0 disables EMA
    gradient_checkpointing: bool = False
    num_workers: int = 1  # data-parallel Ray Train workers
    # Prepare step n+1's inputs (data, codec, frozen VLM) in a worker thread while step n trains; same results.
    prefetch: bool = True
    checkpoint_every: int = 200
    sample_every: int = 0
    cond_dropout: float = 0.1  # instruction dropout so CFG has an unconditional branch
    # Image (1-frame) pairs: toy-world edit types (style is image-only), or a second manifest (data.source=manifest).
    image_edit_types: List[str] = field(
        default_factory=lambda: ["add", "remove", "replace", "recolor", "background", "style"])
    image_manifest: Optional[str] = None
    mixed_precision: str = "bf16"  # bf16 | none; bf16 autocast applies on CUDA only (no CPU speedup)
    worker_num_cpus: float = 0.5  # Ray Train resources_per_worker CPU (fractional on small machines)
    keep_checkpoints: int = 2  # resumable checkpoints kept under <output_dir>/checkpoints
    log_every: int = 10
    num_sample_edits: int = 4  # prompts in the sample_every mp4 grid
    # Transformer-config overrides for a DiT trained from scratch (no base_checkpoint / dit_pretrained), e.g.
    # {num_attention_heads: 4}. The base checkpoint's config.json records the result, so grpo/edit load it as is.
    dit_overrides: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        choices = {"schedule": ("constant", "cosine", "linear"),
                   "timestep_sampling": ("uniform", "logit_normal", "shifted"),
                   "trainable": ("full", "projector_refiner", "lora"), "mixed_precision": ("bf16", "none"),
                   "loss_space": ("velocity", "x0"), "mask_normalization": ("none", "area")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"sft.{key} must be one of {allowed}, got {getattr(self, key)!r}")
        if not 0.0 <= self.image_prob <= 1.0 or not 0.0 <= self.cond_dropout < 1.0:
            raise ConfigError(f"sft.image_prob must be in [0, 1] and sft.cond_dropout in [0, 1), got "
                              f"{self.image_prob}, {self.cond_dropout}")
        if self.steps <= 0 or self.batch_size <= 0 or self.num_workers <= 0 or self.log_every <= 0:
            raise ConfigError("sft.steps, sft.batch_size, sft.num_workers and sft.log_every must be > 0")
        if self.refine_from_step is not None and self.refine_from_step < 0:
            raise ConfigError(f"sft.refine_from_step must be >= 0 (or null), got {self.refine_from_step}")
        if self.refine_timestep_shift is not None:
            if self.timestep_sampling != "shifted":
                raise ConfigError("sft.refine_timestep_shift needs sft.timestep_sampling: shifted, got "
                                  f"{self.timestep_sampling!r}")
            if self.refine_timestep_shift <= 0:
                raise ConfigError(f"sft.refine_timestep_shift must be > 0, got {self.refine_timestep_shift}")
        if self.refine_lr is not None and (self.refine_lr <= 0 or self.lr <= 0):
            raise ConfigError(f"sft.refine_lr and sft.lr must be > 0, got {self.refine_lr}, {self.lr}")
        if self.curriculum_steps < 0:
            raise ConfigError(f"sft.curriculum_steps must be >= 0, got {self.curriculum_steps}")
        if self.curriculum_steps > 0 and not self.curriculum_edit_types:
            raise ConfigError("sft.curriculum_steps > 0 needs sft.curriculum_edit_types (a non-empty list)")


@dataclass(frozen=True)
class SFTConfig:
    """`viva sft` — trains the base checkpoint."""

    recipe: str = "sft"
    seed: int = 0
    output_dir: str = "runs/sft"
    resume: bool = False
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    sft: SFTSection = field(default_factory=SFTSection)
    data: DataConfig = field(default_factory=DataConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)


@dataclass(frozen=True)
class EvalConfig:
    """`viva eval` — VIE-Bench-style metrics on a manifest."""

    recipe: str = "eval"
    seed: int = 0
    manifest: str = MISSING
    output_dir: str = "runs/eval"
    clip_model: str = "toy"  # toy | ViT-H-14 | a local open_clip checkpoint
    dino_model: str = "toy"  # toy | a timm / hub id
    pickscore_model: str = "toy"
    micro_batch_size: int = 16
    device: str = "cpu"
    judge_url: Optional[str] = None  # OpenAI-compatible endpoint of a VLM judge (optional)
    judge_model: Optional[str] = None
    # What is evaluated: "target" (the manifest's ground truth), "source" (identity baseline) or a folder of
    # edited videos named <sample id>.mp4 / .png (what `viva edit` writes).
    edited: str = "target"
    method_name: str = "viva"  # row label in the Table-1 style report
    clip_pretrained: Optional[str] = None  # open_clip tag / checkpoint file for a real clip_model
    num_frames: int = 8  # frames sampled per video for every CLIP/DINO metric (0 = all)
    max_samples: int = 0  # 0 = the whole manifest
    judge_max_frames: int = 4  # frames of each video sent to the VLM judge


@dataclass(frozen=True)
class ServeConfig:
    """`viva serve` — Ray Serve application."""

    recipe: str = "serve"
    host: str = "127.0.0.1"
    port: int = 8000
    model: ModelConfig = field(default_factory=ModelConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    loras: List[str] = field(default_factory=list)  # name=path
    auth_token: Optional[str] = None
    max_upload_mb: float = 64.0
    max_duration_s: float = 30.0
    max_instruction_chars: int = 512
    max_queue: int = 16
    job_dir: str = "runs/serve/jobs"
    num_replicas: int = 1
    max_batch_size: int = 4  # requests of one LoRA and shape denoised together (@serve.batch)
    batch_wait_s: float = 0.05  # how long a batch waits to fill
    max_loras_per_replica: int = 4  # multiplexed adapters kept in host memory per replica (LRU)
    replica_num_cpus: float = 0.25  # fractional CPUs: Ray on a 2-core laptop must not ask for whole CPUs
    replica_num_gpus: float = 0.0
    bucket_area: int = 0  # pixels of the model's bucket; 0 = the preset's training area
    window: int = 0  # frames per temporal window; 0 = the preset's

    def __post_init__(self) -> None:
        if self.max_queue < 1 or self.max_batch_size < 1 or self.num_replicas < 1:
            raise ConfigError("serve: max_queue, max_batch_size and num_replicas must be >= 1")
        _require(1 <= self.port <= 65535, "port", self.port, "in [1, 65535]")
        for key in ("max_upload_mb", "max_duration_s"):
            v = getattr(self, key)
            _require(_finite(v) and v > 0, key, v, "a finite number > 0")
        _require(_finite(self.batch_wait_s) and self.batch_wait_s >= 0, "batch_wait_s", self.batch_wait_s, ">= 0")
        for key in ("max_instruction_chars", "max_loras_per_replica"):
            _require(getattr(self, key) >= 1, key, getattr(self, key), ">= 1")
        for key in ("replica_num_cpus", "replica_num_gpus", "bucket_area", "window"):
            _require(getattr(self, key) >= 0, key, getattr(self, key), ">= 0")


# ----------------------------------------------------------------------------------------------------------------
# `viva data`: triplets (VLM captions + instructions) and paired-data synthesis
# ----------------------------------------------------------------------------------------------------------------

REAL_EDIT_TYPES = ["add", "remove", "replace", "recolor", "background", "style"]  # reference edits need an image


@dataclass(frozen=True)
class VLMEngineConfig:
    """A chat VLM: any OpenAI-compatible endpoint, or vLLM's offline engine in Ray actors on GPU nodes."""

    engine: str = "openai"  # openai | vllm
    model: str = "Qwen/Qwen2.5-VL-7B-Instruct"  # served model name (openai) / hub id or local path (vllm)
    base_url: str = "http://127.0.0.1:8000/v1"  # openai: POST {base_url}/chat/completions
    api_key_env: Optional[str] = None  # name of the environment variable holding the key (never the key itself)
    timeout_s: float = 120.0  # per HTTP request
    http_retries: int = 2  # extra tries of one request after a timeout, connection error, HTTP 429 or 5xx
    retry_backoff_s: float = 1.0  # doubled after each HTTP retry
    concurrency: int = 4  # requests in flight per actor (openai)
    temperature: float = 0.7
    max_tokens: int = 512
    # vllm only: GPUs per actor, tensor parallelism, context length, the actors' runtime_env (vllm's own pins)
    num_gpus: float = 1.0
    tensor_parallel_size: int = 1
    max_model_len: int = 8192
    runtime_env: Any = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require(self.engine in ("openai", "vllm"), "vlm.engine", self.engine, "one of openai | vllm")
        for key in ("timeout_s", "max_tokens", "concurrency", "max_model_len", "tensor_parallel_size"):
            v = getattr(self, key)
            _require(_finite(v) and v > 0, f"vlm.{key}", v, "> 0")
        for key in ("http_retries", "retry_backoff_s", "temperature", "num_gpus"):
            v = getattr(self, key)
            _require(_finite(v) and v >= 0, f"vlm.{key}", v, ">= 0")


@dataclass(frozen=True)
class TripletsSection:
    """`viva data triplets`: per source video a VLM writes t_src, an instruction mixing edit types, and t_edit."""

    num_frames: int = 1  # frames sent to the VLM, evenly spaced over the video
    max_side: int = 512  # frames are downscaled so their longer side is at most this (pixels)
    max_attempts: int = 3  # tries per video (malformed answer or failed request) before it goes to the rejects
    edit_types: List[str] = field(default_factory=lambda: list(REAL_EDIT_TYPES))
    min_edit_types: int = 1  # each video's instruction mixes between min and max of edit_types (drawn per video)
    max_edit_types: int = 2
    batch_size: int = 4  # videos per actor call (vLLM batches them into one generate)
    num_actors: int = 2
    num_cpus: float = 0.25
    video_extensions: List[str] = field(default_factory=lambda: [".mp4", ".mov", ".mkv", ".webm", ".avi"])

    def __post_init__(self) -> None:
        for key in ("num_frames", "max_side", "max_attempts", "batch_size", "num_actors", "min_edit_types"):
            _require(getattr(self, key) >= 1, f"triplets.{key}", getattr(self, key), ">= 1")
        _require(self.num_cpus >= 0, "triplets.num_cpus", self.num_cpus, ">= 0")
        _require(bool(self.edit_types), "triplets.edit_types", self.edit_types, "a non-empty list")
        _require(self.min_edit_types <= self.max_edit_types <= len(self.edit_types), "triplets.max_edit_types",
                 self.max_edit_types, f"in [min_edit_types, {len(self.edit_types)} (len(edit_types))]")


@dataclass(frozen=True)
class StageSpec:
    """One `viva data pairs` stage: a registered component, its weights (hub id / local path) and its Ray actors."""

    component: str = MISSING  # registry name (viva.data.pairs.registry) or a dotted path pkg.module:Class
    model: Optional[str] = None  # hub id or local directory of the weights (None: the component has none)
    options: Any = field(default_factory=dict)  # component-specific; unknown keys are errors
    num_actors: int = 1
    num_cpus: float = 0.25
    num_gpus: float = 0.0

    def __post_init__(self) -> None:
        _require(self.num_actors >= 1, f"pairs stage {self.component}.num_actors", self.num_actors, ">= 1")
        _require(self.num_cpus >= 0 and self.num_gpus >= 0, f"pairs stage {self.component}.num_cpus/num_gpus",
                 (self.num_cpus, self.num_gpus), ">= 0")


@dataclass(frozen=True)
class PairsSection:
    """`viva data pairs`: detect -> track masks -> inpaint -> VLM quality control -> SFT manifest (remove/add)."""

    num_frames: int = 33  # clip length written to the SFT manifest
    frame_stride: int = 1
    height: int = 480
    width: int = 832
    queries: List[str] = field(default_factory=lambda: ["person", "dog", "cat", "car", "bicycle", "bird", "horse"])
    # Options stay empty here: each component has its own defaults, and a dict default would be merged into the
    # options of whatever component a YAML file picks instead.
    detect: StageSpec = field(default_factory=lambda: StageSpec("grounding_dino", "IDEA-Research/grounding-dino-base"))
    track: StageSpec = field(default_factory=lambda: StageSpec("sam2_video", "facebook/sam2.1-hiera-large"))
    inpaint: StageSpec = field(default_factory=lambda: StageSpec(
        "diffusers_inpaint", "stable-diffusion-v1-5/stable-diffusion-inpainting"))
    qc: StageSpec = field(default_factory=lambda: StageSpec("vlm"))
    min_mask_area: float = 0.01  # tracked mask area (fraction of the frame, mean over frames) kept in this range
    max_mask_area: float = 0.5
    add_pairs: bool = True  # also write the reverse pair (inpainted -> original, "add")
    remove_instruction: str = "Remove the {object}."
    add_instruction: str = "Add a {object}."
    caption_with: str = "a video with a {object}"
    caption_without: str = "a video without the {object}"

    def __post_init__(self) -> None:
        for key in ("num_frames", "frame_stride", "height", "width"):
            _require(getattr(self, key) >= 1, f"pairs.{key}", getattr(self, key), ">= 1")
        _require(self.height % 8 == 0 and self.width % 8 == 0, "pairs.height/width", (self.height, self.width),
                 "multiples of 8 (the inpainting VAE)")
        _require(bool(self.queries), "pairs.queries", self.queries, "a non-empty list of object names")
        _require(0 <= self.min_mask_area < self.max_mask_area <= 1, "pairs.min_mask_area/max_mask_area",
                 (self.min_mask_area, self.max_mask_area), "0 <= min < max <= 1")


@dataclass(frozen=True)
class DataPipelineConfig:
    """`viva data` — triplets and paired-data synthesis from real videos."""

    recipe: str = "data"
    seed: int = 0
    # The VLM prompt files (string.Template, $fields): triplet_system/user.txt and qc_system/user.txt
    prompt_dir: str = "configs/data/prompts"
    device: str = "cpu"  # torch device of the pairs stages' models
    dtype: str = "float32"  # float32 | bfloat16 | float16 (the pairs stages' weights)
    vlm: VLMEngineConfig = field(default_factory=VLMEngineConfig)
    triplets: TripletsSection = field(default_factory=TripletsSection)
    pairs: PairsSection = field(default_factory=PairsSection)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    def __post_init__(self) -> None:
        _require(self.dtype in ("float32", "bfloat16", "float16"), "dtype", self.dtype,
                 "one of float32 | bfloat16 | float16")


RECIPES = {"grpo": GRPOConfig, "sft": SFTConfig, "eval": EvalConfig, "serve": ServeConfig,
           "data": DataPipelineConfig}


def _schema_for(recipe: Any, source: str) -> type:
    if recipe not in RECIPES:
        raise ConfigError(f"{source}: 'recipe' must be one of {sorted(RECIPES)}, got {recipe!r}")
    return RECIPES[recipe]


def load_config(path: str | Path | None, overrides: List[str] | None = None, recipe: str | None = None) -> Any:
    """Load a YAML config, apply ``key=value`` overrides and return the typed dataclass instance."""
    overrides = list(overrides or [])
    source = str(path) if path is not None else "<defaults>"
    raw: Any = OmegaConf.create({})
    if path is not None:
        if not Path(path).is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            raw = OmegaConf.load(path)
        except Exception as e:  # yaml.YAMLError and friends
            raise ConfigError(f"{source}: not valid YAML: {e}") from e
        if not isinstance(raw, DictConfig):
            raise ConfigError(f"{source}: the top level must be a mapping of keys (recipe: ..., grpo: ...), "
                              f"got a {type(raw).__name__.removesuffix('Config').lower()}")
    recipe = raw.get("recipe", recipe) if path is not None else recipe
    schema = OmegaConf.structured(_schema_for(recipe, source))
    try:
        merged = OmegaConf.merge(schema, raw)
    except OmegaConfBaseException as e:
        raise ConfigError(f"{source}: {_explain(e)}") from e
    _writable(merged)  # frozen schemas make read-only nodes; an indexed override edits one in place
    for override in overrides:
        merged = _apply_override(merged, override)
    try:
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        raise ConfigError(f"{source}: {_explain(e)}") from e
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from e


def _apply_override(merged: Any, override: str) -> Any:
    """One ``key=value`` override; a numeric key part indexes a list (``rewards.0.weight=2``)."""
    key, eq, _ = override.partition("=")
    if not eq or not key:
        raise ConfigError(f"override {override!r}: expected key=value")
    try:
        if any(part.isdigit() for part in key.split(".")):
            merged.merge_with_dotlist([override])
            return merged
        return OmegaConf.merge(merged, OmegaConf.from_dotlist([override]))
    except (OmegaConfBaseException, ValueError, TypeError) as e:
        raise ConfigError(f"override {override!r}: {_explain(e)}") from e


def _writable(node: Any) -> None:
    """Clear the read-only flag OmegaConf puts on the nodes of frozen dataclasses (the result is frozen again by
    ``to_object``)."""
    OmegaConf.set_readonly(node, False)
    keys = node.keys() if isinstance(node, DictConfig) else range(len(node))
    for k in keys:
        if not OmegaConf.is_missing(node, k) and isinstance(node[k], (DictConfig, ListConfig)):
            _writable(node[k])


def _explain(e: Exception) -> str:
    key = getattr(e, "full_key", None)
    msg = str(e).splitlines()[0]
    return f"key '{key}': {msg}" if key else msg


def to_yaml(cfg: Any) -> str:
    """The resolved config as YAML (what `viva config show` prints and runs save beside their outputs)."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def to_dict(cfg: Any) -> dict:
    """Plain nested dict of a config dataclass (for JSON metadata)."""
    return dataclasses.asdict(cfg)
