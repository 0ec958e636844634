"""Data stage: the task catalog, raw files and splits, the hub and mirrors, the lock, data checks."""
