//! embed-dinov2
