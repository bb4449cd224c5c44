"""The file's Lightning ``Trainer(...)`` call, read statically: what the harness may apply, and what it is told to
skip with why (no Trainer runs here)."""

from __future__ import annotations

from migrate_ml.verify.locate import locate
from migrate_ml.verify.trainer_call import trainer_settings


def test_literal_settings_constants_and_callbacks_are_read_through_the_files_aliases():
    found = trainer_settings(
        "import pytorch_lightning as pl\nfrom pytorch_lightning.callbacks import ModelCheckpoint\nEPOCHS = 12\n"
        "class Printer(pl.Callback):\n    pass\n"
        "def main(args):\n    trainer = pl.Trainer(max_epochs=EPOCHS, precision=16, accumulate_grad_batches=args.acc,\n"
        "        callbacks=[ModelCheckpoint(dirpath='ckpt', save_top_k=-1), Printer(), make_callback()], **extra)\n")
    assert found["line"] == 7
    assert found["settings"] == {"max_epochs": 12, "precision": 16}
    assert [(c.get("qualified_name"), c.get("file_class"), c["kwargs"]) for c in found["callbacks"]] == [
        ("pytorch_lightning.callbacks.ModelCheckpoint", None, {"dirpath": "ckpt", "save_top_k": -1}),
        (None, "Printer", {})]
    assert found["skipped"] == [["accumulate_grad_batches=args.acc", "not applied: not a literal value"],
                                ["callback make_callback()", "not applied: neither a Lightning callback nor a class of "
                                 "the file"],
                                ["**extra", "not read: its keys are not known statically"]]


def test_a_hugging_face_trainer_is_not_a_lightning_trainer():
    assert trainer_settings("from transformers import Trainer\nTrainer(model=m, args=a)\n") is None
    assert trainer_settings("import lightning as L\nL.Trainer(\n") is None  # does not parse


def test_the_plan_carries_the_trainer_call_and_a_callback_class_is_no_entry_point_of_its_own():
    plan = locate("fit.py", "import lightning as L\nimport torch\n\n\nclass ExactMatch(L.Callback):\n"
                  "    def on_validation_epoch_end(self, trainer, pl_module):\n"
                  "        preds = torch.sigmoid(pl_module.logits) > 0.5\n"
                  "        pl_module.log('exact_match', (preds == pl_module.y).all(dim=1).float().mean())\n\n\n"
                  "def main():\n    L.Trainer(max_epochs=3, callbacks=[ExactMatch()])\n", {})
    assert plan.classes == [] and plan.uncovered == []
    assert plan.trainer["line"] == 12 and plan.trainer["settings"] == {"max_epochs": 3}
    assert plan.trainer["callbacks"][0]["file_class"] == "ExactMatch"
