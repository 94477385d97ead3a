"""signals ops."""
