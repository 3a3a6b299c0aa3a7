"""Local mode: run LoRATrainings on this machine with the same trainer, without Kubernetes."""
