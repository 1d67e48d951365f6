//! embed-torch
