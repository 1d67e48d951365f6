//! embed-clip
