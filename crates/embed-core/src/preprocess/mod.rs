//! Preprocessing equal to Hugging Face's PIL-based image processors (`CLIPImageProcessor`,
//! `BitImageProcessor`): shortest-edge resize with PIL's antialiased filters, centre crop,
//! rescale, normalise, CHW `f32`.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod coeffs;
mod kernels;
mod plan;
mod resize;
mod scalar;
mod spec;

pub use resize::resize_crop;
pub use spec::{CropSize, Geometry, PreprocessSpec, Region, Resample, ResizeSpec};

/// SIMD levels of the preprocessing kernels, lowest first. Every level gives the same bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SimdLevel {
    /// Portable Rust.
    Scalar,
    /// x86-64 AVX2.
    Avx2,
    /// x86-64 AVX-512 (VBMI + VNNI).
    Avx512,
}

/// The environment variable that caps the SIMD level: `scalar` or `avx2` (`avx512` or unset:
/// whatever the CPU has). For comparing kernels on one machine and for ruling them out when
/// debugging; results are the same at every level.
pub const SIMD_ENV: &str = "EMBED_CORE_SIMD";

/// The highest level the kernels may use, from [`SIMD_ENV`] (read once per process). An
/// unknown value is logged once (a warning) and ignored.
pub(crate) fn simd_cap() -> SimdLevel {
    static CAP: std::sync::OnceLock<SimdLevel> = std::sync::OnceLock::new();
    *CAP.get_or_init(|| simd_cap_from(std::env::var(SIMD_ENV).ok().as_deref()))
}

/// The cap a value of [`SIMD_ENV`] sets, warning about (and ignoring) an unknown one.
fn simd_cap_from(value: Option<&str>) -> SimdLevel {
    parse_simd_cap(value).unwrap_or_else(|e| {
        log::warn!("{e}; using every SIMD level the CPU has");
        SimdLevel::Avx512
    })
}

fn parse_simd_cap(value: Option<&str>) -> Result<SimdLevel, String> {
    match value.map(str::trim) {
        None | Some("") | Some("avx512") => Ok(SimdLevel::Avx512),
        Some("avx2") => Ok(SimdLevel::Avx2),
        Some("scalar") => Ok(SimdLevel::Scalar),
        Some(other) => Err(format!(
            "{SIMD_ENV}={other:?} is not one of scalar, avx2, avx512"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps the messages of this crate's log records.
    struct Capture(std::sync::Mutex<Vec<String>>);

    impl log::Log for Capture {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, record: &log::Record<'_>) {
            if record.target().starts_with("embed_core") {
                let line = format!("{} {}", record.level(), record.args());
                self.0.lock().unwrap().push(line);
            }
        }
        fn flush(&self) {}
    }

    #[test]
    fn an_unknown_simd_cap_is_a_logged_warning() {
        static CAPTURE: Capture = Capture(std::sync::Mutex::new(Vec::new()));
        log::set_logger(&CAPTURE).unwrap();
        log::set_max_level(log::LevelFilter::Warn);
        assert_eq!(simd_cap_from(Some("sse")), SimdLevel::Avx512);
        assert_eq!(simd_cap_from(Some("avx2")), SimdLevel::Avx2);
        // Only this test sets such a value (the process's own `EMBED_CORE_SIMD` may add
        // another warning).
        let lines = CAPTURE.0.lock().unwrap().clone();
        let ours: Vec<_> = lines.iter().filter(|l| l.contains("\"sse\"")).collect();
        assert_eq!(ours.len(), 1, "{lines:?}");
        assert!(
            ours[0].starts_with("WARN EMBED_CORE_SIMD=\"sse\" is not one of"),
            "{lines:?}"
        );
    }

    #[test]
    fn simd_cap_values() {
        assert_eq!(parse_simd_cap(None), Ok(SimdLevel::Avx512));
        assert_eq!(parse_simd_cap(Some("avx512")), Ok(SimdLevel::Avx512));
        assert_eq!(parse_simd_cap(Some(" avx2 ")), Ok(SimdLevel::Avx2));
        assert_eq!(parse_simd_cap(Some("scalar")), Ok(SimdLevel::Scalar));
        assert!(
            parse_simd_cap(Some("sse"))
                .unwrap_err()
                .contains("EMBED_CORE_SIMD")
        );
    }
}
