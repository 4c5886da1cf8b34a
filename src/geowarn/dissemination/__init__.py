"""Warnings that reach people: recipients, messages, channels, the outbox, acknowledgement, CAP 1.2."""
