"""The monitoring network (一张网): stations, devices, sensors, ingestion, quality control, health."""
