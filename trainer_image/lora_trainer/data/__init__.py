"""Data preparation: fetching sources, checking and converting images, captions, the manifest."""
