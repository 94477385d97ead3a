"""Market data: the normalized schemas, feed decoders and normalizers, order books."""
