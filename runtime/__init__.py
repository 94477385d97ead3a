"""tickloom runtime: live execution of plans and the ``tickloom`` command line (the top layer)."""
