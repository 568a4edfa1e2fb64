"""What a document's fragments spread to, checked before the depth and alias rules see it.

strawberry's depth and alias rules (api_graphql.schema) walk a fragment again at every spread of it
and look each spread up without checking that the fragment exists. A document within every limit of
tokens could therefore make them raise (a spread of an unknown fragment: KeyError; a chain of a few
hundred spreads: RecursionError), answered with no `extensions.code`, or take exponential time:
fragments `F2 { ...F1 ...F1 } F3 { ...F2 ...F2 } ...` double the work at each level, 4 s of CPU for
an 817-character document of 20 levels. `spread_check` walks each fragment once (its size is
remembered), so its own work is linear in the document; the rules run only on documents whose
spreads are known, acyclic, nested at most MAX_SPREAD_NESTING deep and expand to at most
MAX_EXPANDED_SELECTIONS selections, so theirs is bounded by that.
"""

from __future__ import annotations

from enum import Enum

from graphql.language import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

# The selections (fields, inline fragments, spreads) of one operation with every fragment spread in
# place. The largest document of the API's own use (every field of a task, its page and edges) has
# under 50; 2,000 tokens without fragments cannot pass ~1,000.
MAX_EXPANDED_SELECTIONS = 5_000
# Fragments spreading fragments: how deep the chain may go.
MAX_SPREAD_NESTING = 32


class SpreadCheck(Enum):
    FINE = "fine"
    # A spread of an unknown fragment, or fragments that spread each other: graphql-core's own rules
    # (KnownFragmentNamesRule, NoFragmentCyclesRule) report it, without the depth and alias rules.
    INVALID = "invalid"
    TOO_LARGE = f"The document's fragments expand to more than {MAX_EXPANDED_SELECTIONS} selections."
    TOO_DEEP = f"The document's fragments spread fragments more than {MAX_SPREAD_NESTING} deep."


class _Stop(Exception):
    def __init__(self, check: SpreadCheck) -> None:
        self.check = check


def spread_check(document: DocumentNode) -> SpreadCheck:
    fragments = {node.name.value: node for node in document.definitions if isinstance(node, FragmentDefinitionNode)}
    # name -> (its selections with every spread in place, the longest chain of spreads from it, itself included)
    measured: dict[str, tuple[int, int]] = {}
    open_fragments: set[str] = set()

    def fragment(name: str, nesting: int) -> tuple[int, int]:
        known = measured.get(name)
        if known is None:
            if name not in fragments or name in open_fragments:
                raise _Stop(SpreadCheck.INVALID)
            if nesting > MAX_SPREAD_NESTING:
                raise _Stop(SpreadCheck.TOO_DEEP)
            open_fragments.add(name)
            size, below = selections(fragments[name].selection_set, nesting)
            open_fragments.discard(name)
            known = measured[name] = (size, below + 1)
        if nesting - 1 + known[1] > MAX_SPREAD_NESTING:  # measured once, spread again deeper down
            raise _Stop(SpreadCheck.TOO_DEEP)
        return known

    def selections(selection_set: SelectionSetNode, nesting: int) -> tuple[int, int]:
        total = height = 0
        pending = [selection_set]
        while pending:
            for selection in pending.pop().selections:
                total += 1
                if isinstance(selection, FragmentSpreadNode):
                    size, chain = fragment(selection.name.value, nesting + 1)
                    total += size
                    height = max(height, chain)
                elif isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set is not None:
                    pending.append(selection.selection_set)
            if total > MAX_EXPANDED_SELECTIONS:
                raise _Stop(SpreadCheck.TOO_LARGE)
        return total, height

    try:
        for node in document.definitions:
            if isinstance(node, OperationDefinitionNode):
                selections(node.selection_set, 0)
            elif isinstance(node, FragmentDefinitionNode):
                fragment(node.name.value, 1)
    except _Stop as stop:
        return stop.check
    return SpreadCheck.FINE
