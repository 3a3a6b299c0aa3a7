"""Status of trainings: the state an attempt's Job and pods show, conditions, and progress mirroring."""
