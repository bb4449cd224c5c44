"""ML101: datasets that can only yield one class index per image block the migration."""

from __future__ import annotations

import libcst as cst
from libcst.metadata import QualifiedNameProvider

from migrate_ml.rules._base import Applicability, Rule

# Qualified names of the dataset constructors and factories that yield class indices.
CLASS_INDEX_DATASETS: dict[str, str] = {
    **{
        f"torchvision.datasets.{name}": name
        for name in ("ImageFolder", "DatasetFolder", "CIFAR10", "CIFAR100", "MNIST", "FashionMNIST")
    },
    "torchvision.datasets.folder.ImageFolder": "ImageFolder",
    "torchvision.datasets.folder.DatasetFolder": "DatasetFolder",
    "torchvision.datasets.cifar.CIFAR10": "CIFAR10",
    "torchvision.datasets.cifar.CIFAR100": "CIFAR100",
    "torchvision.datasets.mnist.MNIST": "MNIST",
    "torchvision.datasets.mnist.FashionMNIST": "FashionMNIST",
    "timm.data.create_dataset": "create_dataset",
    "timm.data.dataset_factory.create_dataset": "create_dataset",
}

SUGGESTION = (
    "replace it with a multi-label dataset yielding (image, float multi-hot [C]) such as "
    "migrate_ml_reference.MultiLabelCsvDataset(root, split=...) (labels.csv: image and "
    "space-separated label names, classes.txt: one label per line); `migrate-ml sample-data` "
    "writes a small example in that layout"
)


class ClassIndexDatasetRule(Rule):
    code = "ML101"
    name = "class-index-dataset"
    summary = "ImageFolder, CIFAR10/100, MNIST, FashionMNIST and timm create_dataset yield one class per image: blocking, reported."
    rationale = (
        "A multi-label model can only be trained on data that says which labels each image "
        "has. `ImageFolder` (one folder per class), the CIFAR and MNIST datasets and timm's "
        "`create_dataset` yield a single class index per image, so no rewrite of the training "
        "code can make them multi-label: the dataset has to be replaced by one whose targets "
        "are float multi-hot vectors [C], for example a CSV listing each image's labels. This "
        "is reported as blocking at every construction (names are resolved, so aliases and "
        "`from torchvision import datasets` spellings are found); nothing is rewritten. The "
        "reference runtime's `MultiLabelCsvDataset` reads such a CSV and `migrate-ml "
        "sample-data` writes a small example of the layout."
    )
    applicability = Applicability.DISPLAY_ONLY
    example_before = "train_set = datasets.ImageFolder(root, transform=train_tf)\n"
    example_after = (
        "from migrate_ml_reference import MultiLabelCsvDataset\n"
        "train_set = MultiLabelCsvDataset(root, split='train', transform=train_tf)\n"
    )
    triggers = ("ImageFolder", "DatasetFolder", "CIFAR10", "CIFAR100", "MNIST", "create_dataset")
    METADATA_DEPENDENCIES = (*Rule.METADATA_DEPENDENCIES, QualifiedNameProvider)

    def visit_Call(self, node: cst.Call) -> None:
        qualified = {q.name for q in self.get_metadata(QualifiedNameProvider, node.func, set())}
        for name in sorted(qualified):
            dataset = CLASS_INDEX_DATASETS.get(name)
            if dataset is not None:
                self.report(
                    node,
                    f"blocking: {dataset} yields one class index per image and cannot express "
                    "multi-label targets",
                    suggestion=SUGGESTION,
                )
                return
