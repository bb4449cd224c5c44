import subprocess
import sys
import types

import pytest

import migrate_ml_reference
from migrate_ml_reference import api


def test_package_import_does_not_load_torch():
    code = "import sys, migrate_ml_reference; assert 'torch' not in sys.modules, 'torch imported'"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_lazy_names_match_api_module():
    # api.__all__ is the package's list itself, so compare what api really imports: a name added
    # there but not to the list would be missing from ``from migrate_ml_reference import ...``
    provided = {name for name, value in vars(api).items() if not name.startswith("_") and not isinstance(value, types.ModuleType)}
    assert provided == set(migrate_ml_reference.__all__)
    for name in migrate_ml_reference.__all__:
        assert getattr(migrate_ml_reference, name) is getattr(api, name)


def test_reference_never_imports_the_codemod():
    from pathlib import Path

    for path in Path(api.__file__).parent.glob("*.py"):
        text = path.read_text()
        assert "import migrate_ml\n" not in text and "from migrate_ml " not in text and "from migrate_ml." not in text, path


def test_reference_model_outputs_one_logit_per_class():
    import torch

    model = api.create_reference_model(7, image_size=64)
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 7)


def test_cli_defaults_mirror_train_config():
    import dataclasses

    from migrate_ml_reference.cli import TrainDefaults
    from migrate_ml_reference.train import TrainConfig

    config = TrainConfig()
    for field in dataclasses.fields(TrainDefaults):
        assert getattr(TrainDefaults(), field.name) == getattr(config, field.name), field.name


@pytest.mark.parametrize("argv", [["--model", "no_such_model_xyz"], ["--model-kwarg", "no_such_kwarg=3"]])
def test_bad_model_is_a_one_line_error(argv, capsys, tmp_path) -> None:
    from migrate_ml_reference.cli import main

    code = main(["reference", "train", "--sample", "digits", "--epochs", "1", "--out", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
