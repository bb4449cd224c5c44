"""The dynamic pass of ``migrate-ml verify``: run migrated code on sample multi-label data.

``python -m migrate_ml_reference.harness SPEC.json`` runs :func:`.run.main`. Imports go one way,
from the framework modules to the shared core, and only the entry module knows them all:

* :mod:`.run`: the entry module: reads the spec, runs each file in a contained child, imports the
  file and dispatches each entry point to the module of its framework;
* framework modules: :mod:`.loops` (plain functions, plain classes, model classes, prediction
  functions), :mod:`.lightning` (``LightningModule`` subclasses), :mod:`.hugging_face`
  (``from_pretrained``, ``compute_metrics``), :mod:`.accelerate` (the ``accelerator`` a loop receives);
* the core: :mod:`.unit` (a file's run: sample arguments by role, loss and metric rows),
  :mod:`.sample` (sample data and the recording sample model), :mod:`.judge` (loss records and
  metric references), :mod:`.core` (rows, user tracebacks, hints, loss interception), the checks
  (:mod:`.checks_outputs`, :mod:`.checks_state`, :mod:`.checks_threshold`), and the containment
  and time budget glue (:mod:`.contain`, :mod:`.budget`), and :mod:`.trainer_settings` (what of the file's own
  Lightning ``Trainer(...)`` call verify's ``Trainer`` applies; it imports the package it is given, never a
  framework module).
"""
