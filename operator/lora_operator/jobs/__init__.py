"""Rendering of the trainer's attempt Jobs and their config snapshots."""
