//! The source kit: what every source shares beside its own pagination — the
//! checkpoint codec (versioned cursors), lenient wire types for platform JSON
//! read into typed structs, and the small mapping helpers (text, decimals,
//! money, timestamps, identity).
//!
//! Sources read platform JSON into typed wire structs (`#[derive(Deserialize)]`
//! with these lenient types), never by walking `serde_json::Value`: the
//! structs document the platform's shape, and decoding straight into them
//! costs no intermediate tree.

pub mod checkpoint;
pub mod fields;
pub mod mapping;
pub mod wire;

pub use checkpoint::{Cursor, decode, encode, plausible_seconds, plausible_time};
pub use fields::{top_level_field_list, top_level_fields};
pub use wire::{Loose, Many, Maybe, optional_text, raw_records, raw_value};
