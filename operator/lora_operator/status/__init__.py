"""Status of trainings: what an attempt's Job and pods say, conditions, and progress mirroring."""
