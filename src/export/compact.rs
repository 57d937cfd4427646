//! Compaction (placeholder, filled in below).
