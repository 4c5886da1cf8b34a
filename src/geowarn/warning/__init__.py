"""The warning engine: site warnings from instruments, regional rainfall-driven warnings, alert life."""
