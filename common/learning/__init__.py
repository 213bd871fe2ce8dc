"""Learning: numpy models with one flat float64 parameter vector, datasets, partitions.

Pure maths: no runtime imports. See docs/architecture.md for the contract.

Added to the contract: ``load_partitions(data_spec, K, partitions) -> (X_parts, y_parts)``
(a worker's rows only, O(own rows) memory) and ``load_test_set(data_spec) -> (X_test, y_test,
n_classes)`` (the master's held-out rows only); see ``common.learning.datasets``.
"""

from common.learning.datasets import (
    Dataset,
    dataset_shape,
    load_dataset,
    load_partitions,
    load_test_set,
)
from common.learning.errors import LearningSpecError
from common.learning.models import CNN, MLP, LogisticRegression, Model, build_model
from common.learning.partition import partition_rows
from common.learning.spec import (
    ACTIVATIONS,
    DATA_KINDS,
    MODEL_KINDS,
    validate_data_spec,
    validate_model_spec,
)

__all__ = [
    "ACTIVATIONS",
    "CNN",
    "DATA_KINDS",
    "MLP",
    "MODEL_KINDS",
    "Dataset",
    "LearningSpecError",
    "LogisticRegression",
    "Model",
    "build_model",
    "dataset_shape",
    "load_dataset",
    "load_partitions",
    "load_test_set",
    "partition_rows",
    "validate_data_spec",
    "validate_model_spec",
]
