"""The audit log: who changed what, when. Every ORM write is recorded by a session hook."""
