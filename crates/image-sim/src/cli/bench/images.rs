//! The images a benchmark runs on: synthetic JPEGs, written to a folder that is removed
//! afterwards unless the user keeps it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use rand::{Rng, SeedableRng};

/// Synthetic JPEGs, quality 90. Default: like `baseline.py` makes, bilinear-upscaled noise in
/// 8-px cells, 360–640 px. With `photo: Some((lo, hi))`: sides in `lo..=hi` and noise at every
/// scale from 2 px to the image's size, each octave with the same amplitude (roughly the 1/f
/// amplitude spectrum of photographs), so that a downscale has detail to lose in every band.
pub(super) fn synthetic_images(
    dir: &Path,
    n: usize,
    photo: Option<(u32, u32)>,
) -> anyhow::Result<()> {
    use image::imageops::{FilterType, resize};
    use rayon::prelude::*;
    // One random stream per image: the same files whatever the number of threads.
    (0..n)
        .into_par_iter()
        .try_for_each(|i| -> anyhow::Result<()> {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(i as u64);
            let img = match photo {
                None => {
                    let (h, w) = (rng.gen_range(360..640u32), rng.gen_range(360..640u32));
                    let (bh, bw) = (h / 8 + 1, w / 8 + 1);
                    let base =
                        image::RgbImage::from_fn(bw, bh, |_, _| image::Rgb(rng.r#gen::<[u8; 3]>()));
                    resize(&base, w, h, FilterType::Triangle)
                }
                Some((lo, hi)) => {
                    let (h, w) = (rng.gen_range(lo..=hi), rng.gen_range(lo..=hi));
                    crate::synthetic::photo_like(&mut rng, w, h)
                }
            };
            let path = dir.join(format!("img{i:05}.jpg"));
            let file = std::fs::File::create(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(
                std::io::BufWriter::new(file),
                90,
            );
            enc.encode_image(&img)
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(())
        })
}

/// A temporary folder removed on drop.
pub(super) struct TempDir(pub(super) PathBuf);

impl TempDir {
    pub(super) fn new() -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_nanos();
        let p =
            std::env::temp_dir().join(format!("image-sim-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p)?;
        Ok(Self(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
