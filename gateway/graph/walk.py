"""One walk of a selection: the spec's CollectFields, for everything that reads a document.

The document limits (root fields), the cost rule, the look-ahead and the plan compiler all ask
:func:`collect_fields` which fields a selection holds: one meaning of "the fields of a
selection", one place to fix it (as graphql-js's ``collectFields.ts`` and graphql-core's
``collect_fields`` are for their executors).

It follows the spec (https://spec.graphql.org/October2021/#CollectFields()) as graphql-core runs
it over several field nodes at once (``collect_subfields``): fields grouped by response key in
document order; inline fragments and fragment spreads looked through, each named fragment once
(spreading it again adds nothing, and a document that spreads fragments in fragments would
otherwise cost exponential time); a fragment whose type condition does not apply skipped.

Two questions are the caller's, because callers know different things:

* ``applies(type_condition)``: whether a fragment applies to the object type collected for. The
  plan and the cost rule know the type; the limits and the look-ahead do not, and read every
  fragment (a look-ahead may ask a source for a little more than a query uses, never less);
* ``included(selection)``: whether ``@skip``/``@include`` keep a selection. Only the plan knows
  the variables' values; the others read every selection (the cost rule prices both branches).

The walk is iterative: fragments nested however deep cannot exhaust Python's stack.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    NamedTypeNode,
    SelectionNode,
    SelectionSetNode,
)

__all__ = ["Fragments", "collect_fields", "selected"]

Fragments = Mapping[str, FragmentDefinitionNode]


def collect_fields(selection_sets: Iterable[SelectionSetNode | None], fragments: Fragments, *,
                   applies: Callable[[NamedTypeNode], bool] | None = None,
                   included: Callable[[SelectionNode], bool] | None = None
                   ) -> dict[str, list[FieldNode]]:
    """The fields of ``selection_sets`` by response key, in document order (see the module's
    docstring for ``applies`` and ``included``; None: every fragment applies, every selection is
    included)."""
    grouped: dict[str, list[FieldNode]] = {}
    visited: set[str] = set()
    pending: list[Iterator[SelectionNode]] = [
        iter(s.selections) for s in reversed(list(selection_sets)) if s is not None]
    while pending:
        selection = next(pending[-1], None)
        if selection is None:
            pending.pop()
            continue
        if included is not None and not included(selection):
            continue
        if isinstance(selection, FieldNode):
            key = (selection.alias or selection.name).value
            grouped.setdefault(key, []).append(selection)
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition
            if condition is None or applies is None or applies(condition):
                pending.append(iter(selection.selection_set.selections))
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in visited:
                continue
            visited.add(name)
            fragment = fragments.get(name)
            if fragment is not None and (applies is None or applies(fragment.type_condition)):
                pending.append(iter(fragment.selection_set.selections))
    return grouped


def selected(selection_sets: Iterable[SelectionSetNode | None], fragments: Fragments
             ) -> list[FieldNode]:
    """Every field node of ``selection_sets``, through every fragment (each once), directives
    and type conditions not read: what the look-ahead and the cost rule's look-ahead read."""
    return [node for nodes in collect_fields(selection_sets, fragments).values()
            for node in nodes]
