//! Mirror (placeholder, filled in below).
