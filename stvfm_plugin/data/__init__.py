"""Dataset tooling: raw files and synthetic traffic -> the BasicTS 1.1.0 layout."""
from .layout import DatasetSpec, load_coords, load_graph, read_meta, write_dataset
from .synth import SynthOptions, generate

__all__ = ["DatasetSpec", "SynthOptions", "generate", "load_coords", "load_graph", "read_meta", "write_dataset"]
