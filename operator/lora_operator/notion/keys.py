"""Labels and annotations that tie a LoRATraining to its Notion row and source."""

from __future__ import annotations

from lora_operator.jobs.naming import short_name

# The row's page id as 32 hex digits: sync looks a row's training up by it before it
# creates one, so a crash between claim and creation never makes a second training.
LABEL_PAGE = "lora-operator.io/notion-page"
# The NotionSource's name, shortened with a hash when it is longer than a label value allows.
LABEL_SOURCE = "lora-operator.io/notion-source"
ANNOTATION_SOURCE = "lora-operator.io/notion-source"
"""NAMESPACE/NAME of the NotionSource."""
ANNOTATION_PAGE_URL = "lora-operator.io/notion-page-url"
ANNOTATION_CREATOR = "lora-operator.io/notion-creator"
"""Notion user id of the row's submitter, mentioned in the final comment."""
ANNOTATION_TITLE = "lora-operator.io/notion-title"
ANNOTATION_REPORTED = "lora-operator.io/notion-reported"
"""The final phase whose write-back and comment are done; set once per training."""


def source_label(source_name: str) -> str:
    return short_name(source_name)
