"""Spec loading: YAML with locations, overlays, overrides, ``${}`` params, validation and the content hash."""

from pipelines.spec.load import LoadedSpec, load_spec, spec_files

__all__ = ["LoadedSpec", "load_spec", "spec_files"]
