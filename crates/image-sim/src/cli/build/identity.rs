//! What `build` records of its model in a collection's `preprocessing` field, so that `query`
//! (and an incremental `build`) can load the same model again, and what makes two builds'
//! vectors comparable.

use embed_collection::Manifest;
use embed_pipeline::ResizeOn;

use crate::cli::extraction::ModelArgs;

/// The model and the pixel pipeline of a collection, as `build` records them.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct ModelRecord {
    /// `clip` or `dinov2`; `None` for the test embedder.
    pub family: Option<crate::ModelKind>,
    /// The weights as loaded: an absolute checkpoint folder or a model id (`None` for the
    /// test embedder). The weights digest beside it says which files they were.
    pub weights: Option<String>,
    /// DINOv2 pooling as given (`None`: the default).
    pub pooling: Option<String>,
    /// The test embedder's grid size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_model: Option<usize>,
    /// The preprocessing and decoding the embeddings depend on, as the pipeline spells it.
    pub pixels: String,
    /// Whether images were resized on the model's device (close to PIL, not exact).
    pub resize_on_device: bool,
    /// Whether JPEGs were decoded at reduced size (`--fast-jpeg`).
    pub fast_jpeg: bool,
    /// Whether the checkpoint is labelled as holding random weights.
    pub random_weights: bool,
}

impl ModelRecord {
    /// The record of a collection written by `build`; an error naming the folder otherwise.
    pub fn of(manifest: &Manifest, dir: &std::path::Path) -> anyhow::Result<Self> {
        serde_json::from_value(manifest.preprocessing.clone()).map_err(|e| {
            anyhow::anyhow!(
                "{}: its collection.json does not say how to load its model (not written by \
                 `image-sim build`?): {e}",
                dir.display()
            )
        })
    }

    /// The model options that load this model again.
    pub fn model_args(&self) -> ModelArgs {
        ModelArgs {
            model: self.family,
            weights: self.weights.clone(),
            pooling: self.pooling.clone(),
            test_model: self.test_model,
            test_delay_ms: 0,
        }
    }

    /// Where the images are resized for this collection's vectors.
    pub fn resize_on(&self) -> ResizeOn {
        if self.resize_on_device {
            ResizeOn::Device
        } else {
            ResizeOn::Host
        }
    }

    /// As JSON for `collection.json`.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// The weights as `build` records them: a local folder as an absolute path (a query from
/// another working directory finds it), anything else (a model id) as given.
pub fn weights_as_recorded(given: &str) -> String {
    let p = std::path::Path::new(given);
    if p.exists()
        && let Ok(abs) = std::fs::canonicalize(p)
    {
        return abs.to_string_lossy().into_owned();
    }
    given.to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn record_round_trips_through_json() {
        let r = ModelRecord {
            family: Some(crate::ModelKind::Dinov2),
            weights: Some("facebook/dinov2-base".into()),
            pooling: Some("cls".into()),
            test_model: None,
            pixels: "spec".into(),
            resize_on_device: false,
            fast_jpeg: false,
            random_weights: false,
        };
        let back: ModelRecord = serde_json::from_value(r.to_value()).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.model_args().model, Some(crate::ModelKind::Dinov2));
        assert_eq!(weights_as_recorded("org/not-a-folder"), "org/not-a-folder");
    }
}
