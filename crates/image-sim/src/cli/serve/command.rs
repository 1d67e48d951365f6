//! Runs `serve`: loads each collection's model with [`crate::models::load`] on the
//! collection's model thread and serves until SIGTERM or SIGINT.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use image_sim_serve::{
    CollectionSpec, ServeConfig, Server, Verify, collection_model_id, folder_name,
    read_ground_truth,
};

use super::Args;
use crate::ModelKind;
use crate::models::{ModelOptions, load};

/// `[NAME=]VALUE` options: the value for `name`, or the one for every collection.
fn per_collection(
    values: &[String],
    flag: &str,
    names: &[String],
) -> anyhow::Result<HashMap<String, String>> {
    let mut all = None;
    let mut out = HashMap::new();
    for v in values {
        match v.split_once('=') {
            Some((n, val)) if names.iter().any(|x| x == n) => {
                out.insert(n.to_string(), val.to_string());
            }
            Some((n, _)) => bail!(
                "--{flag} {v}: no collection named {n} (served: {})",
                names.join(", ")
            ),
            None => all = Some(v.clone()),
        }
    }
    if let Some(a) = all {
        for n in names {
            out.entry(n.clone()).or_insert_with(|| a.clone());
        }
    }
    Ok(out)
}

/// The family of a model id (`openai/clip-...` → CLIP, `facebook/dinov2-...` → DINOv2).
fn guess_kind(model_id: &str) -> Option<ModelKind> {
    let m = model_id.to_ascii_lowercase();
    if m.contains("dinov2") {
        Some(ModelKind::Dinov2)
    } else if m.contains("clip") {
        Some(ModelKind::Clip)
    } else {
        None
    }
}

/// Runs `serve`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let names: Vec<String> = args
        .collections
        .iter()
        .map(|d| folder_name(d))
        .collect::<Result<_, _>>()?;
    let images = per_collection(&args.images, "images", &names)?;
    let kinds = per_collection(&args.model, "model", &names)?;
    let weights = per_collection(&args.weights, "weights", &names)?;
    let mut specs = Vec::new();
    for (dir, name) in args.collections.iter().zip(&names) {
        let model_id = collection_model_id(dir)?;
        let kind = match kinds.get(name) {
            Some(k) => k.parse::<ModelKind>().map_err(anyhow::Error::msg)?,
            None => guess_kind(&model_id).with_context(|| {
                format!("{name}: cannot tell the model family of {model_id:?}; give --model {name}=clip|dinov2")
            })?,
        };
        let options = ModelOptions {
            weights: Some(weights.get(name).cloned().unwrap_or(model_id)),
            device: args.runtime.device.clone(),
            precision: args.runtime.precision.clone(),
            pooling: if kind == ModelKind::Dinov2 {
                args.pooling.clone()
            } else {
                None
            },
        };
        let factory: image_sim_serve::EmbedderFactory = Box::new(move || {
            let m = load(kind, &options).map_err(|e| e.to_string())?;
            Ok(Box::new(m.embedder) as Box<dyn embed_core::Embedder>)
        });
        let mut spec = CollectionSpec::new(dir, factory)?;
        spec.name = name.clone();
        spec.image_root = images.get(name).map(Into::into);
        spec.ef_search = args.ef_search;
        spec.rerank = args.rerank;
        specs.push(spec);
    }
    let addr = format!("{}:{}", args.host, args.port);
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&addr)
        .with_context(|| format!("--host {}: not an address", args.host))?
        .next()
        .with_context(|| format!("--host {}: no address", args.host))?;
    let defaults = ServeConfig::default();
    let max_body_bytes = args.max_body_mib << 20;
    let config = ServeConfig {
        addr,
        max_body_bytes,
        decode_limits: embed_core::DecodeLimits {
            max_file_bytes: max_body_bytes as u64,
            ..defaults.decode_limits
        },
        request_timeout: Duration::from_secs(args.timeout as u64),
        header_read_timeout: Duration::from_secs(args.header_timeout as u64),
        max_connections: args.max_connections,
        queue_capacity: args.queue,
        max_batch: args.max_batch,
        batch_wait: Duration::from_millis(args.batch_wait_ms),
        add_token: args
            .token
            .or_else(|| std::env::var("IMAGE_SIM_SERVE_TOKEN").ok())
            .filter(|t| !t.is_empty()),
        ground_truth: match &args.ground_truth {
            Some(p) => read_ground_truth(p)?,
            None => HashMap::new(),
        },
        verify: if args.quick_verify {
            Verify::Quick
        } else {
            Verify::Full
        },
        ..defaults
    };
    let writable = config.add_token.is_some();
    let server = Server::start(config, specs)?;
    eprintln!(
        "serving {} on http://{} ({}); SIGTERM or Ctrl-C stops",
        names.join(", "),
        server.local_addr(),
        if writable {
            "images can be added with the token"
        } else {
            "read-only"
        }
    );
    server.wait()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_families_are_guessed_from_model_ids() {
        assert_eq!(
            guess_kind("openai/clip-vit-base-patch32"),
            Some(ModelKind::Clip)
        );
        assert_eq!(guess_kind("facebook/dinov2-small"), Some(ModelKind::Dinov2));
        assert_eq!(guess_kind("test/grid-mean-2"), None);
    }

    #[test]
    fn per_collection_values_override_the_common_one() {
        let names = vec!["a".to_string(), "b".to_string()];
        let v = per_collection(&["x".into(), "b=y".into()], "images", &names).unwrap();
        assert_eq!(v["a"], "x");
        assert_eq!(v["b"], "y");
        assert!(per_collection(&["c=z".into()], "images", &names).is_err());
    }
}
