"""lora-trainer: prepares data, captions, trains and exports LoRA adapters."""

__version__ = "0.1.0"

# Exit code for input the trainer can never succeed on (bad spec, no usable data).
# The operator's Job podFailurePolicy fails fast on it instead of retrying.
EXIT_INVALID_INPUT = 42
