"""Download the study's checkpoints into the standard Hugging Face cache (only the files the
encoders read: config.json, preprocessor_config.json, model.safetensors).

  python scripts/fetch_weights.py [MODEL_ID ...]     (default: both study checkpoints)

Respects HF_HUB_OFFLINE=1, HF_HOME, HF_HUB_CACHE and HF_ENDPOINT. Exits 1 with a message when the
hub cannot be reached and the files are not cached.
"""

import sys

from huggingface_hub import snapshot_download

MODELS = ["openai/clip-vit-base-patch32", "facebook/dinov2-base"]
FILES = ["config.json", "preprocessor_config.json", "model.safetensors"]


def main():
    ok = True
    for model in sys.argv[1:] or MODELS:
        try:
            path = snapshot_download(model, allow_patterns=FILES)
            print(f"{model}: {path}")
        except Exception as e:  # noqa: BLE001 - any failure means "not available here"
            ok = False
            print(f"{model}: not available ({type(e).__name__}: {str(e).splitlines()[0][:200]})", file=sys.stderr)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
