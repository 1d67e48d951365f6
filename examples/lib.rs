//! Examples live next to this crate.
