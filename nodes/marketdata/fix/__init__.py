"""FIX tag=value market-data logs → normalized ``book_deltas``, ``trades`` and ``quotes`` (see ``decode``)."""

from nodes.marketdata.fix.decode import FixChunk, FixDecoding, decode_fix
from nodes.marketdata.fix.dictionary import DictionaryError, FixDictionary, FixProtocol, load_dictionary, protocol_for
from nodes.marketdata.fix.report import FixQualityReport, QuarantinedMessage
from nodes.marketdata.fix.validate import FixMessage, Rejection, Validator

__all__ = [
    "DictionaryError", "FixChunk", "FixDecoding", "FixDictionary", "FixMessage", "FixProtocol", "FixQualityReport",
    "QuarantinedMessage", "Rejection", "Validator", "decode_fix", "load_dictionary", "protocol_for",
]
