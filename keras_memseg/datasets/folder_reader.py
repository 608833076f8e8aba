"""tf.data reader of a folder dataset (layout: `keras_memseg.datasets.folder_dataset`)."""

import tensorflow as tf

from keras_memseg.datasets import transforms
from keras_memseg.datasets.folder_dataset import folder_examples
from keras_memseg.datasets.folder_dataset import read_classes
from keras_memseg.datasets.folder_dataset import read_example


def load_folder(root, split="train", with_file_names=False):
    """`tf.data.Dataset` of `{"image": uint8 (H,W,3), "label": uint8 (H,W)}` of one split
    of a folder dataset, in sorted file order (plus `"file_name"`, the image's path
    relative to `ROOT/images/<split>`, when asked).

    Images and labels are decoded with PIL inside `tf.numpy_function` (labels must be
    read with PIL: `tf.io.decode_png` turns palette indices into colours). A bad
    example fails the iteration with an error whose message names the file and the
    problem (`folder_dataset.read_example`). Use `keras_memseg.datasets.load(root,
    split)` rather than this function.

    Example:
    >>> import pathlib, shutil, tempfile
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "classes.txt").write_text("background\\ncat\\n")
    >>> (root / "images" / "train").mkdir(parents=True)
    >>> (root / "labels" / "train").mkdir(parents=True)
    >>> Image.new("RGB", (8, 6)).save(root / "images" / "train" / "a.jpg")
    >>> Image.new("L", (8, 6), 1).save(root / "labels" / "train" / "a.png")
    >>> example = next(iter(load_folder(root, "train", with_file_names=True)))
    >>> example["image"].shape, int(example["label"][0, 0]), example["file_name"].numpy()
    (TensorShape([6, 8, 3]), 1, b'a.jpg')
    >>> shutil.rmtree(root)
    """
    names, colours = read_classes(root)
    examples = folder_examples(root, split)
    num_classes = len(names)

    def decode(image_path, label_path):
        return read_example(image_path.decode(), label_path.decode(), num_classes, colours)

    def read(image_path, label_path, file_name):
        image, label = tf.numpy_function(
            decode, [image_path, label_path], [tf.uint8, tf.uint8], stateful=False
        )
        image.set_shape((None, None, 3))
        label.set_shape((None, None))
        example = {"image": image, "label": label}
        if with_file_names:
            example["file_name"] = file_name
        return example

    images, labels, file_names = (list(column) for column in zip(*examples))
    ds = tf.data.Dataset.from_tensor_slices((images, labels, file_names))
    return ds.map(
        transforms.plain_graph(read), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
