"""Sinks on type annotations that a runtime checker enforces: labels and predictions annotated with
jaxtyping as one integer per sample (``y: Int[Tensor, "batch_size"]``), which beartype rejects once
they are multi-hot rows.
"""

from __future__ import annotations

import ast
import re

from migrate_ml.rules.semantics import sources
from migrate_ml.rules.semantics.meanings import ARGMAX, CLASS_INDEX, THRESHOLDED

_INTEGER_DTYPES = frozenset(
    f"jaxtyping.{dtype}" for dtype in (
        "Int", "Int8", "Int16", "Int32", "Int64", "UInt", "UInt8", "UInt16", "UInt32", "UInt64", "Integer",
    )
)
_PREDICTED = re.compile(r"^(?:y_hat|y_pred|preds?|predictions?|predicted)$")
"""How code names one prediction per sample beside its labels."""


class AnnotationChecks:
    """The checks of :class:`~migrate_ml.rules.semantics.sinks.core.Sinks` on jaxtyping annotations."""

    def _one_integer_per_sample(self, annotation: ast.AST | None) -> bool:
        """``Int[Tensor, "batch_size"]``: an integer tensor of one dimension, one number per sample."""
        if not (isinstance(annotation, ast.Subscript) and isinstance(annotation.slice, ast.Tuple)):
            return False
        if self.analysis.qualified(annotation.value) not in _INTEGER_DTYPES or len(annotation.slice.elts) != 2:
            return False
        shape = annotation.slice.elts[1]
        return isinstance(shape, ast.Constant) and isinstance(shape.value, str) and len(shape.value.split()) == 1

    def _annotated_assignment(self, statement: ast.AnnAssign) -> None:
        """``y: Int[Tensor, "batch_size"] = data[1]``, ``y_hat: Int[...] = torch.argmax(logits, dim=1)``."""
        if not (self._classification_training and isinstance(statement.target, ast.Name)):
            return
        if not self._one_integer_per_sample(statement.annotation):
            return
        meaning = self.analysis.value(statement.value).meaning if statement.value is not None else ""
        self._annotated(statement.annotation, statement.target.id, meaning)

    def _annotated_parameters(self) -> None:
        """A signature's ``y: Int[Tensor, "batch_size"]``, or a batch annotated ``tuple[Float[...],
        Int[Tensor, "batch_size"]]`` (its items after the input are the labels)."""
        if not self._classification_training:
            return
        for function in ast.walk(self.analysis.tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            arguments = function.args
            for argument in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs):
                annotation = argument.annotation
                if self._one_integer_per_sample(annotation):
                    self._annotated(annotation, argument.arg, "")
                elif (
                    isinstance(annotation, ast.Subscript) and isinstance(annotation.value, ast.Name)
                    and annotation.value.id == "tuple" and isinstance(annotation.slice, ast.Tuple)
                ):
                    for item in annotation.slice.elts[1:]:
                        if self._one_integer_per_sample(item):
                            self._annotated(item, "", "")

    def _annotated(self, annotation: ast.Subscript, name: str, meaning: str) -> None:
        """Reports ``annotation`` when ``name`` (or its value's meaning) holds labels or predictions; an
        unnamed item of a batch tuple is its labels."""
        written = ast.unparse(annotation)
        if _PREDICTED.match(name) or meaning in (ARGMAX, THRESHOLDED):
            self.report(
                annotation, "argmax-prediction",
                f"{name} is annotated {written}: one predicted class per sample, which a runtime type "
                "checker (beartype, jaxtyping) rejects once predictions are multi-label",
                'annotate the thresholded predictions Bool[Tensor, "batch_size num_classes"]',
            )
        elif not name or sources.LABEL_RETURNED.match(name) or meaning == CLASS_INDEX:
            self.report(
                annotation, "class-index-source",
                f"{name + ' is' if name else 'the labels are'} annotated {written}: one class index per sample, which "
                "a runtime type checker (beartype, jaxtyping) rejects once the labels are multi-hot rows",
                'annotate the labels Float[Tensor, "batch_size num_classes"] (float multi-hot rows)',
            )
