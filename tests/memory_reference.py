"""A plain NumPy transcription of the MCIBI memory update (the reference's `FeaturesMemory.update`).

Written loop-over-classes, independent of keras_memseg's vectorised layer, so the
tests compare two implementations rather than one with itself.
"""

import numpy as np


def _cos(x, m, eps=1e-8):
    # torch.nn.functional.cosine_similarity: x.m / (max(|x|, eps) * max(|m|, eps))
    return (x @ m) / (np.maximum(np.linalg.norm(x, axis=-1), eps) * max(np.linalg.norm(m), eps))


def reference_update(memory, pixels, labels, momentum, ignore_class=255):
    """memory (K, n, C); pixels (N, C) upsampled features; labels (N,)."""
    memory = np.array(memory, dtype=np.float64)
    pixels = np.asarray(pixels, dtype=np.float64)
    num_classes, n, _ = memory.shape
    for c in np.unique(labels):
        if c == ignore_class or c < 0 or c >= num_classes:
            continue
        xc = pixels[labels == c]
        zero = [j for j in range(n) if not np.any(memory[c, j])]
        if zero:  # first time seen (for this slot): plain class mean
            memory[c, zero[0]] = xc.mean(axis=0)
            continue
        if n == 1:
            assign = np.zeros(len(xc), dtype=int)
        else:
            sims = np.stack([_cos(xc, memory[c, j]) for j in range(n)], axis=1)
            assign = np.argmax(sims, axis=1)
        for j in range(n):
            xs = xc[assign == j]
            if len(xs) == 0:
                continue  # keras_memseg leaves an empty slot unchanged
            w = 1.0 - _cos(xs, memory[c, j])
            xbar = (w[:, None] * xs).sum(0) / w.sum() if w.sum() > 0 else xs.mean(0)
            memory[c, j] = (1 - momentum) * memory[c, j] + momentum * xbar
    return memory
