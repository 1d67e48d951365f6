#![doc = include_str!("../README.md")]

mod accept;
mod clip_api;
mod config;
mod error;
mod files;
mod metrics;
mod own_api;
mod server;
mod state;
mod util;
mod worker;

pub use config::{
    CollectionSpec, ServeConfig, collection_model_id, folder_name, read_ground_truth,
};
pub use embed_collection::Verify;
pub use error::{ApiError, ApiResult, Error, Result};
pub use server::Server;
pub use worker::EmbedderFactory;
