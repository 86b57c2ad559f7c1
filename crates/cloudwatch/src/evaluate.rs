//! Alarm evaluation (placeholder; being written).
