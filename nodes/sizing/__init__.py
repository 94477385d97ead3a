"""sizing ops."""
