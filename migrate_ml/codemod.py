"""migrate-ml as a LibCST codemod command, for ``python -m libcst.tool codemod``::

    python -m libcst.tool codemod -x migrate_ml.codemod.MigrateToMultiLabelCommand src/

It runs the same engine as ``migrate-ml rewrite`` (same rules, fixes, threshold constant and
import edits); findings that need a human are reported as LibCST codemod warnings. Use it
when LibCST's runner is already part of a workflow; ``migrate-ml rewrite`` adds diffs,
``--check``, notebooks, project configuration and reports.

This is the one module of the package that imports ``libcst.codemod`` at module level: the
class must subclass ``CodemodCommand``, and only LibCST's tool (which has already imported
``libcst.codemod``) imports this module; the ``migrate-ml`` command never does.
"""

from __future__ import annotations

import argparse

import libcst as cst
from libcst.codemod import CodemodCommand, CodemodContext, SkipFile

from migrate_ml.engine.source import SourceError, SourceFile
from migrate_ml.engine.transform import FileTransformer, Settings, select_rules
from migrate_ml.rules import load_rules


class MigrateToMultiLabelCommand(CodemodCommand):
    DESCRIPTION: str = (
        "Migrate single-label PyTorch training code to multi-label (BCEWithLogitsLoss, float "
        "multi-hot targets, sigmoid > threshold predictions, multi-label metrics)."
    )

    @staticmethod
    def add_args(arg_parser: argparse.ArgumentParser) -> None:
        arg_parser.add_argument("--threshold", type=float, default=0.5, help="decision threshold for sigmoid outputs (default 0.5)")
        arg_parser.add_argument("--unsafe-fixes", action="store_true", help="also apply fixes whose correctness migrate-ml cannot prove")
        arg_parser.add_argument("--select", default="", help="only these rule codes or prefixes (comma-separated)")
        arg_parser.add_argument("--ignore", default="", help="skip these rule codes or prefixes (comma-separated)")

    def __init__(
        self,
        context: CodemodContext,
        threshold: float = 0.5,
        unsafe_fixes: bool = False,
        select: str = "",
        ignore: str = "",
    ) -> None:
        super().__init__(context)
        settings = Settings(
            select=_codes(select), ignore=_codes(ignore), unsafe_fixes=unsafe_fixes, threshold=threshold
        )
        self.transformer = FileTransformer(select_rules(load_rules(), settings.select, settings.ignore), settings)

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        path = self.context.filename or "<stdin>"
        data = tree.bytes
        try:
            result = self.transformer.transform(SourceFile(path=path, data=data, text=tree.code))
        except SourceError as error:
            raise SkipFile(str(error)) from None
        for finding in result.findings_after:
            help_text = f" (help: {finding.suggestion})" if finding.suggestion else ""
            self.warn(f"{path}:{finding.line}:{finding.column}: {finding.code} {finding.message}{help_text}")
        if not result.changed:
            return tree
        return cst.parse_module(result.new_data)


def _codes(value: str) -> tuple[str, ...]:
    return tuple(part.strip().upper() for part in value.split(",") if part.strip())
