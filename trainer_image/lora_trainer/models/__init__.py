"""Base models: the builtin tiny models and the loaders for model URIs."""
