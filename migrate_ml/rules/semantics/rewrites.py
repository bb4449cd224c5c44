"""Builders of the replacement nodes that prediction and accuracy rewrites share.

``torch.sigmoid(z)`` for scores, ``p > THRESHOLD`` for a decision, and the exact-match
comparison ``(p == y.bool()).all(dim=1)`` for an accuracy; ML020..ML024, ML102 and the NumPy
metric helpers build their fixes from these so that the same construct is always written the
same way.
"""

from __future__ import annotations

import libcst as cst

from migrate_ml.rules._exprs import method_call
from migrate_ml.rules.semantics.shapes import unflattened

def torch_sigmoid(torch_name: str, scores: cst.BaseExpression) -> cst.Call:
    return cst.Call(
        func=cst.Attribute(value=cst.Name(torch_name), attr=cst.Name("sigmoid")),
        args=[cst.Arg(scores.with_changes(lpar=[], rpar=[]) if _bare_ok(scores) else scores)],
    )


def _bare_ok(expression: cst.BaseExpression) -> bool:
    return bool(getattr(expression, "lpar", None)) and not isinstance(expression, (cst.Tuple, cst.GeneratorExp))


def above_threshold(left: cst.BaseExpression, threshold_name: str) -> cst.Comparison:
    return cst.Comparison(
        left=left,
        comparisons=[cst.ComparisonTarget(operator=cst.GreaterThan(), comparator=cst.Name(threshold_name))],
    )


def exact_match_rewrite(label_position: str, numpy: bool = False, negated: bool = False):
    """``p == y`` -> ``(p == y.bool()).all(dim=1)``: one correct/incorrect per sample; on NumPy
    arrays ``(p == y.astype(bool)).all(axis=1)``. A ``negated`` comparison (``p != y``, an
    error per sample) becomes ``(p != y.bool()).any(dim=1)``: a sample is a miss when any of
    its labels differs, the complement of exact match."""

    def to_bool(labels: cst.BaseExpression) -> cst.BaseExpression:
        # labels.view(-1) was a no-op on class indices [B]; on multi-hot [B, C] it mixes samples
        return (as_numpy_bool if numpy else as_bool)(unflattened(labels))

    def apply(updated: cst.CSTNode) -> cst.CSTNode:
        if isinstance(updated, cst.Comparison):
            target = updated.comparisons[0]
            if label_position == "left":
                compared = updated.with_changes(left=to_bool(updated.left), lpar=[], rpar=[])
            else:
                compared = updated.with_changes(
                    comparisons=[target.with_changes(comparator=to_bool(target.comparator))], lpar=[], rpar=[]
                )
            compared = compared.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        else:
            assert isinstance(updated, cst.Call) and isinstance(updated.func, cst.Attribute)
            if label_position == "receiver":
                compared = updated.with_changes(func=updated.func.with_changes(value=to_bool(updated.func.value)))
            else:
                index = int(label_position.removeprefix("arg"))
                args = list(updated.args)
                args[index] = args[index].with_changes(value=to_bool(args[index].value))
                compared = updated.with_changes(args=args)
            compared = compared.with_changes(lpar=[], rpar=[])
        return cst.Call(
            func=cst.Attribute(value=compared, attr=cst.Name("any" if negated else "all")),
            args=[cst.Arg(keyword=cst.Name("axis" if numpy else "dim"), value=cst.Integer("1"), equal=cst.AssignEqual(
                whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")))],
            lpar=updated.lpar if isinstance(updated, cst.Call) else [],
            rpar=updated.rpar if isinstance(updated, cst.Call) else [],
        )

    return apply


def as_bool(expression: cst.BaseExpression) -> cst.BaseExpression:
    if (
        isinstance(expression, cst.Call)
        and isinstance(expression.func, cst.Attribute)
        and expression.func.attr.value == "bool"
        and not expression.args
    ):
        return expression
    return method_call(expression, "bool")


def as_numpy_bool(expression: cst.BaseExpression) -> cst.BaseExpression:
    return method_call(expression, "astype", cst.Arg(cst.Name("bool")))
