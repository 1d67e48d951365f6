//! vecindex
