"""indicators ops."""
