"""Ingest formats: decoders by name (``FORMATS``) and the contract every decoder keeps."""

from nodes.catalog.formats.registry import FORMATS, Decoder, bad_record_rate, get_decoder, prepare_options, report_dict

__all__ = ["FORMATS", "Decoder", "bad_record_rate", "get_decoder", "prepare_options", "report_dict"]
