//! Bring your own model: implement [`embed_core::Embedder`] for a TorchScript module and use it
//! with the same index (`vecindex`) and the same evaluation code (`disc21_eval`) as CLIP and
//! DINOv2. The trait is the extension point: four methods, nothing else to register.
//!
//! ```text
//! cargo run --release --example custom_embedder -- [MODEL.pt]
//! ```
//!
//! Without `MODEL.pt` the example traces a tiny random convolutional network with the project's
//! Python (`.venv/bin/python`, PyTorch) into a temporary folder. Any TorchScript module that maps
//! `N × 3 × 224 × 224` float pixels to `N × D` works.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use disc21_eval::benchmark::{BenchModel, RunOptions, run_benchmark};
use disc21_eval::dataset::{EvalSet, Layout, LayoutOverrides, Protocol};
use disc21_eval::generate::{GenerateOptions, generate};
use embed_core::{DecodeOptions, Embedder, PreprocessSpec, embed_paths, l2_normalize_rows};
use embed_pipeline::Model;
use ndarray::{Array2, ArrayView4};
use vecindex::{FlatIndex, Metric, VectorIndex};

/// A TorchScript image encoder. `tch::CModule` is `Send`, which is all `Embedder` asks.
struct TorchScriptEmbedder {
    module: tch::CModule,
    spec: PreprocessSpec,
    dim: usize,
    id: String,
}

impl TorchScriptEmbedder {
    /// Loads `path` on the CPU and finds the embedding width with one dummy forward pass.
    fn new(path: &Path, spec: PreprocessSpec) -> anyhow::Result<Self> {
        let mut module = tch::CModule::load(path)
            .with_context(|| format!("loading TorchScript module {}", path.display()))?;
        module.set_eval();
        let (h, w) = spec.fixed_output_size().unwrap_or((224, 224));
        let (h, w) = (h as i64, w as i64);
        let probe = tch::no_grad(|| {
            module.forward_ts(&[tch::Tensor::zeros([1, 3, h, w], tch::kind::FLOAT_CPU)])
        })?;
        let dims = probe.size();
        if dims.len() != 2 || dims[0] != 1 {
            bail!("the module returns shape {dims:?}; expected 1 × D for one image");
        }
        let stem = path
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        Ok(Self {
            module,
            spec,
            dim: dims[1] as usize,
            id: format!("torchscript/{stem}"),
        })
    }
}

impl Embedder for TorchScriptEmbedder {
    fn model_id(&self) -> &str {
        &self.id
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn preprocess_spec(&self) -> &PreprocessSpec {
        &self.spec
    }
    fn embed_batch(&self, pixels: ArrayView4<'_, f32>) -> embed_core::Result<Array2<f32>> {
        let model_err = |e: tch::TchError| embed_core::Error::Model(Box::new(e));
        let (n, c, h, w) = pixels.dim();
        let contiguous = pixels.as_standard_layout();
        let flat = contiguous.as_slice().unwrap_or_default();
        let input = tch::Tensor::from_slice(flat).reshape([n as i64, c as i64, h as i64, w as i64]);
        let out = tch::no_grad(|| self.module.forward_ts(&[input])).map_err(model_err)?;
        let values: Vec<f32> = out
            .to_kind(tch::Kind::Float)
            .contiguous()
            .view([-1])
            .try_into()
            .map_err(model_err)?;
        Array2::from_shape_vec((n, self.dim), values)
            .map_err(|e| embed_core::Error::Shape(e.to_string()))
    }
}

/// Traces a tiny random CNN (conv 8×8 stride 8 → ReLU → 4×4 average pool → linear 64) with
/// the project's PyTorch.
fn trace_demo_module(dir: &Path) -> anyhow::Result<PathBuf> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let path = dir.join("tiny_cnn.pt");
    let script = "import sys, torch\n\
        torch.manual_seed(0)\n\
        m = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 8, stride=8), torch.nn.ReLU(),\n\
            torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(256, 64)).eval()\n\
        torch.jit.trace(m, torch.zeros(1, 3, 224, 224)).save(sys.argv[1])\n";
    let status = std::process::Command::new(&python)
        .args(["-c", script])
        .arg(&path)
        .status()
        .with_context(|| format!("running {} (run scripts/setup.sh first)", python.display()))?;
    if !status.success() {
        bail!("tracing the demo module failed ({status})");
    }
    Ok(path)
}

fn main() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let module_path = match std::env::args_os().nth(1) {
        Some(p) => PathBuf::from(p),
        None => trace_demo_module(tmp.path())?,
    };
    // CLIP's preprocessing (resize 224, centre crop 224, CLIP mean/std); any spec works.
    let model = TorchScriptEmbedder::new(&module_path, PreprocessSpec::clip())?;
    println!(
        "{}: {}-dimensional embeddings",
        model.model_id(),
        model.dim()
    );

    // A small DISC21-shaped data set.
    let data = tmp.path().join("data");
    let options = GenerateOptions {
        references: 40,
        queries: 20,
        seed: 1,
        ..GenerateOptions::default()
    };
    generate(&data, &options)?;
    let set = EvalSet::load(
        Layout::detect(&data, &LayoutOverrides::default())?,
        Protocol::Official,
    )?;

    // 1. The index: embed the references, build an exact inner-product index, search a query.
    let ref_paths: Vec<&Path> = set.references.iter().map(|r| r.path.as_path()).collect();
    let mut refs = embed_paths(&model, &ref_paths, 8, &DecodeOptions::default())?;
    l2_normalize_rows(&mut refs);
    let ids: Vec<&str> = set.references.iter().map(|r| r.id.as_str()).collect();
    let index = FlatIndex::from_vectors(
        model.dim(),
        Metric::InnerProduct,
        &ids,
        refs.as_slice().unwrap_or_default(),
    )?
    .with_model_id(model.model_id());
    let query = set
        .queries
        .iter()
        .find(|q| !set.ground_truth.references_of(&q.id).is_empty())
        .context("the generated set has no copy query")?;
    let mut q = embed_paths(&model, &[&query.path], 1, &DecodeOptions::default())?;
    l2_normalize_rows(&mut q);
    let hits = index.search(q.as_slice().unwrap_or_default(), 3)?;
    println!(
        "query {} (a copy of {}): top 3",
        query.id,
        set.ground_truth.references_of(&query.id).join(", ")
    );
    for hit in hits.first().into_iter().flatten() {
        println!("  {}  {:.4}", index.id(hit.row).unwrap_or("?"), hit.score);
    }

    // 2. The evaluation: the same benchmark code CLIP and DINOv2 go through.
    let bench = BenchModel {
        name: "custom".into(),
        model: Model::Host(&model),
        weights: module_path.display().to_string(),
        weights_hash: String::new(),
        extra: String::new(),
        random_weights: false,
    };
    let result = run_benchmark(&set, &[bench], &RunOptions::new(tmp.path().join("cache")))?;
    for m in &result.models {
        println!(
            "benchmark ({} references, {} queries): accuracy {:.4}, top-3 {:.4}, µAP {:.4}",
            set.references.len(),
            set.queries.len(),
            m.metrics.accuracy,
            m.metrics.top3_accuracy,
            m.metrics.micro_ap
        );
    }
    Ok(())
}
