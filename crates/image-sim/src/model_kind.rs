//! The model families the toolkit loads by name.

/// The model families of the study.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// OpenAI CLIP (image tower + projection).
    Clip,
    /// Meta DINOv2.
    Dinov2,
}

impl ModelKind {
    /// Every family, in the order the study reports them.
    pub const ALL: [ModelKind; 2] = [ModelKind::Clip, ModelKind::Dinov2];

    /// The checkpoint of the original study (`openai/clip-vit-base-patch32`,
    /// `facebook/dinov2-base`).
    pub fn default_weights(self) -> &'static str {
        match self {
            Self::Clip => "openai/clip-vit-base-patch32",
            Self::Dinov2 => "facebook/dinov2-base",
        }
    }

    /// The lowercase name (`clip`, `dinov2`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Clip => "clip",
            Self::Dinov2 => "dinov2",
        }
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `clip` or `dinov2`, in any case.
impl std::str::FromStr for ModelKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "clip" => Ok(Self::Clip),
            "dinov2" => Ok(Self::Dinov2),
            _ => Err(format!("`{s}`: expected clip or dinov2")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for k in ModelKind::ALL {
            assert_eq!(k.to_string().parse::<ModelKind>(), Ok(k));
        }
        assert_eq!("DINOv2".parse::<ModelKind>(), Ok(ModelKind::Dinov2));
        assert!("vit".parse::<ModelKind>().is_err());
    }

    #[cfg(feature = "torch")]
    #[test]
    fn default_weights_are_the_encoder_crates_defaults() {
        assert_eq!(
            ModelKind::Clip.default_weights(),
            embed_clip::DEFAULT_MODEL_ID
        );
        assert_eq!(
            ModelKind::Dinov2.default_weights(),
            embed_dinov2::DEFAULT_MODEL_ID
        );
    }
}
