"""What the memory learned: pixel-embedding compactness/dispersion, memory diagnostics, plots.

The MCIBI paper (ICCV 2021) claims the dataset-level memory makes pixel
representations more compact within a class and more dispersed between classes;
this package measures both on a user's model and data.

Public API (backend-agnostic: `keras.ops` where it touches the model, NumPy for the rest):
    sample_embeddings(model, dataset, layers, ...) -> PixelSample
    embedding_statistics(features, labels, num_classes) -> EmbeddingStatistics
    memory_diagnostics(memory, class_names) -> MemoryDiagnostics
    memory_movement(memories), load_memory(path, model), load_memories(paths, model)
    analyze(model, dataset, class_names, ...) -> ModelAnalysis
    keras_memseg.analysis.plots (matplotlib + scikit-learn: the `[analysis]` extra)
CLI: `python -m keras_memseg.analysis --model PATH --dataset NAME --out DIR [--baseline PATH]`.
"""

from typing import TYPE_CHECKING

from keras_memseg.lazy import lazy_exports

if TYPE_CHECKING:  # imported on first use: `--help` answers before TensorFlow is imported
    from keras_memseg.analysis.embeddings import PixelSample
    from keras_memseg.analysis.embeddings import PixelSampler
    from keras_memseg.analysis.embeddings import default_layers
    from keras_memseg.analysis.embeddings import nearest_downsample
    from keras_memseg.analysis.embeddings import sample_embeddings
    from keras_memseg.analysis.loading import AnalysisInputError
    from keras_memseg.analysis.loading import load_segmenter
    from keras_memseg.analysis.memory import MemoryDiagnostics
    from keras_memseg.analysis.memory import cosine_similarity_matrix
    from keras_memseg.analysis.memory import load_memories
    from keras_memseg.analysis.memory import load_memory
    from keras_memseg.analysis.memory import memory_diagnostics
    from keras_memseg.analysis.memory import memory_movement
    from keras_memseg.analysis.memory import memory_to_centres
    from keras_memseg.analysis.report import ModelAnalysis
    from keras_memseg.analysis.report import analyze
    from keras_memseg.analysis.report import comparison_json
    from keras_memseg.analysis.report import comparison_markdown
    from keras_memseg.analysis.statistics import EmbeddingStatistics
    from keras_memseg.analysis.statistics import embedding_statistics

__getattr__, __dir__ = lazy_exports(__name__, __file__)
