"""The daemon: schedule, locks, clean stops, deadlines, health, metrics, alerts, logs."""
