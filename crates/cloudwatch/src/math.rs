//! Metric math (placeholder; being written).
