//! Pod metadata enricher (placeholder while the pieces land).
pub mod client;
pub mod events;
pub mod health;
pub mod index;
