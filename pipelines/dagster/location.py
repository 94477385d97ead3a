"""The code location ``tickloom ui`` (and ``dagster dev -m pipelines.dagster.location``) loads.

``defs`` is built from ``$TICKLOOM_SPECS`` (default ``./specs``) into the catalog ``$TICKLOOM_CATALOG`` (default
``./catalog``). Reloading the code location in the UI re-reads the folder: a new YAML file is new assets.
"""

from pipelines.dagster.definitions import build_definitions, specs_folder

defs = build_definitions(specs_folder())
