"""The stand-in Trainer a LightningModule gets in verify's run, in process (no user file, no subprocess):
what ``self.trainer``, ``self.current_epoch``, ``self.optimizers()`` … give, and the forms of
``configure_optimizers`` it understands."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

from migrate_ml_reference.harness.lightning import (  # noqa: E402
    LoggedValues,
    NotOnStandIn,
    StandInTrainer,
    _configured,
    _hint,
    _transfer_hooks,
    lightning_package,
)

FRAMEWORKS = ["lightning", "pytorch_lightning"]


def _module(framework: str, manual: bool):
    base = pytest.importorskip(framework).LightningModule

    class Tiny(base):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = not manual
            self.child = base()  # a nested LightningModule sees the same trainer
            self.backbone = torch.nn.Linear(4, 3)
            self.head = torch.nn.Linear(3, 2)

        def forward(self, x):
            return self.head(self.backbone(x))

    return Tiny()


def _attached(framework: str, manual: bool = False, epochs: int = 3):
    instance = _module(framework, manual)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(10, 4)), batch_size=4)
    logged = LoggedValues(instance, set())
    trainer = StandInTrainer(loader, epochs, 2, logged)
    trainer.attach(instance)
    return instance, trainer, logged


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_module_reads_the_stand_in(framework):
    instance, trainer, logged = _attached(framework)
    assert instance.trainer is trainer and instance.child.trainer is trainer and trainer.lightning_module is instance
    assert (trainer.max_epochs, trainer.num_training_batches, trainer.estimated_stepping_batches) == (3, 3, 9)
    assert (instance.loggers, instance.global_rank) == ([instance.logger], 0)
    datamodule = instance.trainer.datamodule
    assert (len(datamodule.train_dataloader()), datamodule.val_dataloader().batch_size, datamodule.num_classes) == (3, 4, 2)
    instance.logger.experiment.add_image("grid", torch.zeros(3, 4, 4), global_step=instance.global_step)  # dropped
    instance.logger.log_hyperparams({"lr": 0.1})
    assert copy.deepcopy(instance)._trainer is None  # an EMA copy of the whole module: detached, as in Lightning
    trainer.current_epoch = 2
    assert instance.current_epoch == 2 and instance.device == torch.device("cpu")
    instance.log("val_f1", 0.5)
    assert trainer.callback_metrics == {"val_f1": 0.5}
    instance.print("printing goes through trainer.is_global_zero")
    predictions = torch.ones(3, 2)
    assert instance.all_gather(predictions) is predictions  # one process gathers its own
    fit_loop = instance.trainer.fit_loop
    assert (fit_loop.max_epochs, fit_loop.current_epoch, fit_loop.epoch_progress.current.completed) == (3, 2, 2)
    assert fit_loop.epoch_loop.max_steps == -1
    with pytest.raises(NotOnStandIn, match="verify runs no Trainer; its stand-in for self.trainer has no 'strategy'"):
        instance.trainer.strategy  # noqa: B018
    with pytest.raises(NotOnStandIn, match="its stand-in for self.trainer.fit_loop has no 'restarting'"):
        fit_loop.restarting  # noqa: B018
    with pytest.raises(NotOnStandIn, match="stand-in for self.trainer.datamodule has no 'class_weights'") as caught:
        datamodule.class_weights  # noqa: B018
    hint = _hint(caught.value)
    assert hint.startswith("this is a gap of verify's stand-in, not of your code: install lightning")
    assert "verify runs a real Trainer" in hint


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_manual_optimisation_methods(framework):
    instance, trainer, _ = _attached(framework, manual=True)
    backbone = torch.optim.SGD(instance.backbone.parameters(), lr=0.1)
    head = torch.optim.SGD(instance.head.parameters(), lr=0.1)
    optimizers, schedulers = _configured(([backbone, head], [torch.optim.lr_scheduler.StepLR(head, 1)]))
    trainer.set_optimizers(optimizers, schedulers)
    assert instance.optimizers() == [backbone, head]
    assert instance.lr_schedulers() is schedulers[0].scheduler

    instance.toggle_optimizer(head)
    assert not any(p.requires_grad for p in instance.backbone.parameters())
    loss = instance(torch.randn(2, 4)).pow(2).sum() * 100
    instance.manual_backward(loss)
    assert all(p.grad is None for p in instance.backbone.parameters())
    instance.clip_gradients(head, gradient_clip_val=1.0, gradient_clip_algorithm="norm")
    assert torch.stack([p.grad.norm() for p in instance.head.parameters()]).norm() <= 1.0 + 1e-5
    head.step()
    instance.untoggle_optimizer(head)
    assert all(p.requires_grad for p in instance.backbone.parameters())
    assert instance.global_step == 1  # optimizer steps, as Lightning counts them


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_one_optimizer_is_unwrapped_and_no_scheduler_is_none(framework):
    instance, trainer, _ = _attached(framework)
    optimizer = torch.optim.SGD(instance.parameters(), lr=0.1)
    trainer.set_optimizers(*_configured({"optimizer": optimizer}))
    assert instance.optimizers() is optimizer and instance.lr_schedulers() is None
    assert instance.optimizers().optimizer.param_groups[0]["lr"] == 0.1  # as through a LightningOptimizer
    with pytest.raises(RuntimeError, match="disable automatic optimization"):
        instance.manual_backward(instance(torch.randn(2, 4)).sum())


def test_configure_optimizers_forms():
    first, second = (torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1) for _ in range(2))
    one_cycle = torch.optim.lr_scheduler.OneCycleLR(first, max_lr=0.1, total_steps=10)
    step = torch.optim.lr_scheduler.StepLR(second, 1)
    forms = {
        "optimizer": (first, [first], []),
        "list": ([first, second], [first, second], []),
        "two lists, a bare scheduler": (([first], step), [first], [(step, "epoch")]),
        "dict with a config": ({"optimizer": first, "lr_scheduler": {"scheduler": one_cycle, "interval": "step"}},
                               [first], [(one_cycle, "step")]),
        "dicts": (({"optimizer": first, "lr_scheduler": one_cycle}, {"optimizer": second}),
                  [first, second], [(one_cycle, "epoch")]),
        "none": (None, [], []),
    }
    for form, (configured, optimizers, schedulers) in forms.items():
        found, configs = _configured(configured)
        assert (found, [(c.scheduler, c.interval) for c in configs]) == (optimizers, schedulers), form


def test_automatic_optimisation_steps_schedulers_at_their_interval():
    instance, trainer, _ = _attached("lightning")
    optimizer = torch.optim.SGD(instance.parameters(), lr=1.0)
    every_step = torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.5)
    trainer.set_optimizers([optimizer], _configured(([optimizer], [{"scheduler": every_step, "interval": "step",
                                                                     "frequency": 2}]))[1])
    for count in range(1, 5):
        optimizer.step()
        trainer.step_schedulers("step", count)
        trainer.step_schedulers("epoch", count)
    assert optimizer.param_groups[0]["lr"] == 0.25  # stepped at 2 and 4, never per epoch



@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_real_trainer_runs_where_the_package_the_module_subclasses_is_importable(framework):
    package = lightning_package(type(_module(framework, manual=False)))
    assert package is not None and package.__name__.startswith(framework)


def test_the_stand_in_runs_for_a_base_only_named_lightning_module():
    class LightningModule(torch.nn.Module):
        pass

    class Lit(LightningModule):
        pass

    assert lightning_package(Lit) is None


def test_the_stand_in_passes_each_batch_through_the_modules_transfer_hooks_in_trainer_order():
    class Lit(torch.nn.Module):
        def on_after_batch_transfer(self, batch, dataloader_idx):
            return batch[0] * 2, batch[1]

        def on_before_batch_transfer(self, batch, dataloader_idx):
            return batch[0] + 1, batch[1].float()

    hooks = _transfer_hooks(Lit())
    assert [name for name, _ in hooks] == ["on_before_batch_transfer", "on_after_batch_transfer"]
    batch = (torch.zeros(2), torch.ones(2, dtype=torch.long))
    for _, transfer in hooks:
        batch = transfer(batch)
    assert batch[0].tolist() == [2.0, 2.0] and batch[1].dtype == torch.float32
