//! What the commands that embed images share: the model options and their loading, the image
//! list, and the pipeline options (`embed`, `build`, `query`).

use std::path::{Path, PathBuf};
#[cfg(feature = "torch")]
use std::time::Duration;

use anyhow::bail;
#[cfg(feature = "torch")]
use embed_core::PreprocessSpec;
#[cfg(feature = "torch")]
use embed_pipeline::test_model::GridMeanEmbedder;
#[cfg(feature = "torch")]
use embed_pipeline::{ExtractOptions, Model, ProgressFn, Transfer};
use embed_pipeline::{check_unique_ids, list_images, read_list};

use crate::ModelKind;
#[cfg(feature = "torch")]
use crate::models::{LoadedModel, ModelOptions, load};

/// Which model embeds the images.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ModelArgs {
    /// The model family.
    #[arg(long, value_parser = crate::cli::model_kind, required_unless_present = "test_model")]
    pub model: Option<ModelKind>,
    /// Checkpoint folder or Hugging Face model id (default: the study's checkpoint).
    #[arg(long)]
    pub weights: Option<String>,
    /// DINOv2 pooling: `mean`, `cls`, `patch-mean`, `cls-patch-mean`.
    #[arg(long)]
    pub pooling: Option<String>,
    /// Testing aid: use a deterministic grid-mean embedder of this grid size instead of a model.
    #[arg(long, hide = true, value_parser = crate::cli::at_least_one)]
    pub test_model: Option<usize>,
    /// Testing aid: milliseconds the test embedder sleeps per batch.
    #[arg(long, hide = true, default_value_t = 0)]
    pub test_delay_ms: u64,
}

/// The images of `--images DIR` (its files in name order) or `--list FILE` (in list order):
/// never empty, no two with the same id.
pub fn image_list(images: Option<&Path>, list: Option<&Path>) -> anyhow::Result<Vec<PathBuf>> {
    let all = match (images, list) {
        (Some(dir), None) => list_images(dir)?,
        (None, Some(list)) => read_list(list)?,
        _ => bail!("give exactly one of --images DIR and --list FILE"),
    };
    if all.is_empty() {
        match (images, list) {
            (Some(dir), _) => bail!("no files in {}", dir.display()),
            (_, Some(list)) => bail!("{} names no file", list.display()),
            _ => {}
        }
    }
    check_unique_ids(&all)?;
    Ok(all)
}

/// A model ready to embed: the test embedder or an encoder on libtorch.
#[cfg(feature = "torch")]
pub struct LoadedEmbedder {
    test: Option<GridMeanEmbedder>,
    torch: Option<LoadedModel>,
    /// The digest of the weights it runs (`test-grid-N` for the test embedder).
    pub weights_digest: String,
}

#[cfg(feature = "torch")]
impl LoadedEmbedder {
    /// The model as the pipeline takes it.
    pub fn model(&self) -> anyhow::Result<Model<'_>> {
        match (&self.test, &self.torch) {
            (Some(t), _) => Ok(Model::Host(t)),
            (None, Some(m)) => Ok(Model::Torch(m.embedder.as_ref())),
            (None, None) => bail!("no model loaded"),
        }
    }

    /// The encoder loaded on libtorch (`None` for the test embedder).
    pub fn torch(&self) -> Option<&LoadedModel> {
        self.torch.as_ref()
    }

    /// Whether the checkpoint is labelled as holding random weights.
    pub fn random_weights(&self) -> bool {
        self.torch.as_ref().is_some_and(LoadedModel::random_weights)
    }
}

/// Loads the model `args` name on the device and in the precision `runtime` asks for.
#[cfg(feature = "torch")]
pub fn load_embedder(
    args: &ModelArgs,
    runtime: &crate::cli::RuntimeArgs,
) -> anyhow::Result<LoadedEmbedder> {
    match (args.test_model, args.model) {
        (Some(grid), _) => Ok(LoadedEmbedder {
            test: Some(
                GridMeanEmbedder::new(PreprocessSpec::clip(), grid)
                    .with_delay(Duration::from_millis(args.test_delay_ms)),
            ),
            torch: None,
            weights_digest: format!("test-grid-{grid}"),
        }),
        (None, Some(kind)) => {
            let model = load(
                kind,
                &ModelOptions {
                    weights: args.weights.clone(),
                    device: runtime.device.clone(),
                    precision: runtime.precision.clone(),
                    pooling: args.pooling.clone(),
                },
            )?;
            // Caches and collections key on the files the model runs (its kind and the
            // resolved snapshot), not on the name it was given.
            let weights_digest = model.weights_digest()?;
            Ok(LoadedEmbedder {
                test: None,
                torch: Some(model),
                weights_digest,
            })
        }
        (None, None) => bail!("--model is required"),
    }
}

/// The pipeline options of the embedding commands.
#[cfg(feature = "torch")]
#[derive(Debug, Clone)]
pub struct PipelineArgs<'a> {
    /// Device, precision, decoding threads, resizing.
    pub runtime: &'a crate::cli::RuntimeArgs,
    /// `--batch-size` (default: the model's).
    pub batch_size: Option<usize>,
    /// Rows scaled to unit L2 norm.
    pub normalize: bool,
    /// `--max-failure-rate`.
    pub max_failure_rate: f64,
    /// `--strict`.
    pub strict: bool,
    /// `--transfer`.
    pub transfer: Transfer,
}

#[cfg(feature = "torch")]
impl PipelineArgs<'_> {
    /// The extraction options for `model`, reporting progress to `progress`.
    pub fn options(&self, model: &Model<'_>, progress: Option<ProgressFn>) -> ExtractOptions {
        ExtractOptions {
            workers: self.runtime.workers,
            batch_size: self
                .batch_size
                .unwrap_or_else(|| model.default_batch_size()),
            normalize: self.normalize,
            max_failure_rate: self.max_failure_rate,
            strict: self.strict,
            progress,
            transfer: self.transfer,
            resize_on: self.runtime.resize_on,
            fast_jpeg: self.runtime.fast_jpeg,
            ..ExtractOptions::default()
        }
    }
}
