"""lora-trainer: prepares data, captions, trains and exports LoRA adapters."""

__version__ = "0.1.0"

# Exit code for input the trainer can never succeed on (bad spec, no usable data).
# The operator's Job podFailurePolicy fails fast on it instead of retrying.
EXIT_INVALID_INPUT = 42
# Exit code after a stop request (SIGTERM or SIGINT) was honoured with a checkpoint. The Job's
# podFailurePolicy ignores it, so a replacement pod resumes without counting a failure.
EXIT_STOPPED = 143
# Exit code when CUDA ran out of memory. The kernel's OOM kill exits 137 too, and the operator
# retries both with half the batch size.
EXIT_OUT_OF_MEMORY = 137
# Words that the trainer's last log line contains when it exits EXIT_OUT_OF_MEMORY, so that the
# operator can tell it from a kill at the end of the termination grace period, which also exits 137.
OUT_OF_MEMORY_MARK = "out of memory"
