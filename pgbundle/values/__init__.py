"""The values model: field types, durations, cron, the pydantic models, loading."""
