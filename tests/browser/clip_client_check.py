"""clip-retrieval's ClipClient (from the wheel, unchanged) against the service.

Usage: clip_client_check.py SERVER SITE_PACKAGES QUERY_IMAGE. ClipClient's module is loaded
from its file: the package's __init__ imports the whole back end (torch, faiss, ...), which
this environment deliberately lacks.
"""

import importlib.util
import pathlib
import sys

server, site, query = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
sys.path.insert(0, str(site))
spec = importlib.util.spec_from_file_location("clip_client", site / "clip_retrieval" / "clip_client.py")
clip_client = importlib.util.module_from_spec(spec)
spec.loader.exec_module(clip_client)

for index in ("clip", "dino"):
    client = clip_client.ClipClient(url=f"{server}/knn-service", indice_name=index, num_images=5)
    results = client.query(image=query)
    assert isinstance(results, list) and len(results) == 5, results
    assert results[0]["id"] == 3 and results[0]["caption"] == "R000003", results[0]
    sims = [r["similarity"] for r in results]
    assert sims == sorted(sims, reverse=True), sims
    assert results[0]["url"].startswith(server), results[0]["url"]
    again = client.query(embedding_input=[1.0] * (12 if index == "clip" else 27))
    assert len(again) == 5, again
    refused = client.query(text="a photo of a cat")
    assert "text tower" in refused["error"], refused
    print(f"ClipClient {index}: image query -> R000003 first ({sims[0]:.4f}), embedding query ok, text refused")
