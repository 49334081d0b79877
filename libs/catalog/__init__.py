"""Catalogue and purchase data: cleaning and building once (`prepare`), fast reload (`load_dataset`)."""

from libs.catalog.errors import DataError, DatasetNotFoundError
from libs.catalog.store import Dataset, default_artifacts_root, default_data_dir, load_dataset

__all__ = [
    "DataError",
    "Dataset",
    "DatasetNotFoundError",
    "default_artifacts_root",
    "default_data_dir",
    "load_dataset",
]
