"""sources ops."""
