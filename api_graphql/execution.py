"""Plain fields completed in one pass (docs/api/graphql.md, "What a request costs").

graphql-core executes every field of a result on its own: a path entry, a resolve info, strawberry's
resolver wrapper and argument conversion, then the completion of the value. For `tasks(first: 50)`
that is 700 fields per request, most of the CPU of the request. The objects of the types listed in
`PLAIN_TYPES` hold their values as attributes (the task, its edge, the page info), so their selections
are completed here instead, by plans made once per schema and selection: read the attribute, serialize
the scalar or enum with the schema's own `serialize`, recurse into plain objects and lists.

A selection with anything else (a field that is not plain, `@defer`) goes through graphql-core as
before; so does any object whose values do not fit (a null in a non-null field, a value the scalar
refuses), so every error is reported by graphql-core, with its path, exactly as without this module.

A selection of leaves only (every scalar field of a task, say) is compiled once per process, keyed by
its fields, not once per request. The queries hand cached tasks on as rows (`TaskRow`); a task's
completed selection is then remembered beside its row (`core.memo.RenderedMemo`: served again only
for an equal row) as a `Rendered` dict that carries its own JSON text, which the view splices into the
response instead of encoding the task again. A row that does not complete here becomes the model it
stands for before graphql-core sees it, so that path is exactly the model's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum
from functools import partial
from operator import attrgetter
from typing import Any
from uuid import UUID
from weakref import WeakKeyDictionary

from django.core.serializers.json import DjangoJSONEncoder
from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLString,
)
from graphql.execution.collect_fields import GroupedFieldSet
from graphql.language import FragmentSpreadNode, OperationDefinitionNode, SelectionSetNode
from graphql.pyutils import Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from api_graphql.types import PageEdges, TaskRow
from core.memo import RenderedMemo

Getter = Callable[[Any], Any]
Completer = Callable[[Any], Any]


class NotPlain(Exception):
    """A signal, not an error: this selection is completed by graphql-core instead."""


def _getter(field: StrawberryField) -> Getter | None:
    """How to read a plain field: an attribute, or a resolver that needs nothing but the object;
    None for a field with arguments, field extensions (permissions) or a resolver that asks for more."""
    if field.arguments or field.extensions:
        return None
    resolver = field.base_resolver
    if resolver is None:
        return attrgetter(getattr(field, "django_name", None) or field.python_name)
    if resolver.arguments or resolver.info_parameter is not None or resolver.is_async:
        return None
    function = resolver.wrapped_func
    return function if callable(function) else None


# The object types completed here: their values are attributes of plain objects (api_graphql.types).
PLAIN_TYPES = frozenset({"Task", "TaskEdge", "TaskConnection", "PageInfo"})
# Each object type's plan, made the first time a selection of it is completed: {field name: the
# function that reads the field's value}, None for a type that is not plain.
_plans: WeakKeyDictionary[GraphQLObjectType, dict[str, Getter] | None] = WeakKeyDictionary()


def plan_of(object_type: GraphQLObjectType) -> dict[str, Getter] | None:
    try:
        return _plans[object_type]
    except KeyError:
        pass
    plan: dict[str, Getter] | None = None
    if object_type.name in PLAIN_TYPES:
        plan = {}
        for field_name, graphql_field in object_type.fields.items():
            field = (graphql_field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
            if isinstance(field, StrawberryField) and (getter := _getter(field)) is not None:
                plan[field_name] = getter
    _plans[object_type] = plan
    return plan


_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1

# The JSON of strawberry's Django view (`BaseView.encode_json`), one instance for every response.
JSON_ENCODER = DjangoJSONEncoder(separators=(",", ":"))


class Rendered(dict[str, Any]):
    """A completed object that carries its JSON text (`JSON_ENCODER`'s encoding of the dict itself),
    so a response holding it need not encode it again (api_graphql.views). Shared by the responses
    that hold the same row: never changed once made."""

    __slots__ = ("json",)

    def __init__(self, completed: dict[str, Any]) -> None:
        super().__init__(completed)
        self.json = JSON_ENCODER.encode(completed)


class RenderedList(list[Any]):
    """A completed list (a cached page's edges) that carries its JSON text, as `Rendered` does."""

    __slots__ = ("json",)

    def __init__(self, completed: list[Any]) -> None:
        super().__init__(completed)
        self.json = encode_json(completed)


def encode_json(value: Any) -> str:
    """`JSON_ENCODER.encode(value)`, each `Rendered` dict and `RenderedList` written as its own text
    instead of encoded again: the same characters, since that text is the encoder's own."""
    kind = type(value)
    if kind is Rendered or kind is RenderedList:
        return value.json
    if kind is dict:
        parts = []
        for key, item in value.items():
            name = _names.get(key)
            if name is None:
                if type(key) is not str:  # the encoder's own rules for other keys
                    return JSON_ENCODER.encode(value)
                name = JSON_ENCODER.encode(key) + ":"
                if len(_names) < NAMES_MAX:
                    _names[key] = name
            parts.append(name + encode_json(item))
        return "{" + ",".join(parts) + "}"
    if kind is list:
        return "[" + ",".join([encode_json(item) for item in value]) + "]"
    return JSON_ENCODER.encode(value)


# The completed edges a cached page keeps, one per selection (a few are usual; more are forgotten).
PAGE_SELECTIONS_MAX = 8

# The encoded keys of responses (`"node":`), by key: response names, as many as documents have.
_names: dict[str, str] = {}
NAMES_MAX = 4096


# The completed tasks, per (selection's completer, task id), and the completed edges of tasks, per
# (selection's completer, task id, ordering), each beside the row it was made from.
_completed_tasks: RenderedMemo[Rendered] = RenderedMemo("graphql.task")
# Completers of selections of leaves only, per (object type, the selection's response names, field
# names and whether a field has arguments): what such a completer does depends on nothing else.
# Clients choose their selections, so there is a bound; past it a selection is compiled per request.
_leaf_completers: dict[tuple[GraphQLObjectType, tuple[tuple[str, str, bool], ...]], Completer] = {}
LEAF_COMPLETERS_MAX = 512


# For operations whose selections are static: the subfields collected for (object type, ids of the
# field nodes), each entry keeping its list of field details, so the nodes stay alive and their ids are
# not reused; and the completers of those collected sets, per (object type, id of the set), each entry
# keeping its set. Both are cleared when full, like a parser cache.
_collected_subfields: dict[tuple[Any, ...], tuple[Any, Any]] = {}
_selection_completers: dict[tuple[GraphQLObjectType, int], tuple[GroupedFieldSet, Completer | None]] = {}
SELECTION_COMPLETERS_MAX = 1024
# The operations already examined by `is_static`, by id, each kept alive beside its answer.
_static_operations: dict[int, tuple[OperationDefinitionNode, bool]] = {}


def is_static(operation: OperationDefinitionNode, fragments: Mapping[str, Any]) -> bool:
    """Whether graphql-core collects this operation's fields the same way whatever the variables: no
    directive (`@skip`, `@include`, `@defer`...) on any field, fragment or spread, and no fragment
    with variables. Then the fields collected for a list of field nodes depend on the nodes alone."""
    entry = _static_operations.get(id(operation))
    if entry is not None and entry[0] is operation:
        return entry[1]
    static = _static_selections(operation.selection_set) and all(
        not details.definition.variable_definitions and _static_selections(details.definition.selection_set)
        for details in fragments.values()
    )
    if len(_static_operations) >= SELECTION_COMPLETERS_MAX:
        _static_operations.clear()
    _static_operations[id(operation)] = (operation, static)
    return static


def _static_selections(selection_set: SelectionSetNode | None) -> bool:
    if selection_set is None:
        return True
    for selection in selection_set.selections:
        if selection.directives or (isinstance(selection, FragmentSpreadNode) and selection.arguments):
            return False
        if not _static_selections(getattr(selection, "selection_set", None)):
            return False
    return True


def _remembering(complete: Completer) -> Completer:
    """`complete` for a Task selection, its result remembered per row for a `TaskRow`."""

    def complete_row(source: Any) -> Any:
        if type(source) is TaskRow:
            return _completed_tasks.get((complete, source[0]), source, partial(_render, complete, source))
        return complete(source)

    return complete_row


def _remembering_edges(complete: Completer) -> Completer:
    """`complete` for a TaskEdge selection, its result remembered per row and ordering for an edge of
    a `TaskRow`: what an edge gives (the node, the cursor) depends on nothing else."""

    def complete_edge(source: Any) -> Any:
        node = source.node
        if type(node) is TaskRow:
            return _completed_tasks.get((complete, node[0], source.ordering), node, partial(_render, complete, source))
        return complete(source)

    return complete_edge


def _render(complete: Completer, source: Any) -> Rendered:
    return Rendered(complete(source))


def _leaf(graphql_type: GraphQLScalarType | GraphQLEnumType, *, nullable: bool) -> Completer:
    """How to complete a value of a scalar or enum type: the values of the common Python types
    directly (each as graphql-core's own serializer would give it), anything else through the type's
    `serialize`."""
    serialize = graphql_type.serialize

    def general(value: Any) -> Any:
        if value is None:
            if nullable:
                return None
            raise NotPlain  # graphql-core reports a null in a non-null field, with its path
        serialized = serialize(value)
        if serialized is None or serialized is Undefined:  # graphql-core reports that too
            raise NotPlain
        return serialized

    if graphql_type is GraphQLString:
        return lambda value: value if type(value) is str else general(value)
    if graphql_type is GraphQLBoolean:
        return lambda value: value if type(value) is bool else general(value)
    if graphql_type is GraphQLInt:
        return lambda value: value if type(value) is int and _INT_MIN <= value <= _INT_MAX else general(value)
    if graphql_type is GraphQLID:
        return lambda value: str(value) if type(value) is UUID else value if type(value) is str else general(value)
    if isinstance(graphql_type, GraphQLEnumType):
        # strawberry's enum serializer walks the values of the enum; remember its answer per member.
        names: dict[Enum, Any] = {}

        def enum(value: Any) -> Any:
            name = names.get(value) if isinstance(value, Enum) else None
            if name is None:
                name = general(value)
                if isinstance(value, Enum):
                    names[value] = name
            return name

        return enum
    return general


class PlainFieldsExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """strawberry's execution context, completing the selections of plain types in one pass."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # (object type, id(grouped field set)) -> (the set, kept alive so its id stays its own; its
        # completer, or None when the selection is not plain)
        self._plain_completers: dict[tuple[GraphQLObjectType, int], tuple[GroupedFieldSet, Completer | None]] = {}
        self._static_selections: bool | None = None

    def execute_collected_subfields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Any,
        grouped_field_set: GroupedFieldSet,
        new_defer_usages: Any,
        delivery_group_map: Any,
    ) -> Any:
        if not new_defer_usages and delivery_group_map is None and plan_of(parent_type) is not None:
            key = (parent_type, id(grouped_field_set))
            cached = self._plain_completers.get(key)
            if cached is None:
                cached = self._compiled(parent_type, grouped_field_set)
                self._plain_completers[key] = cached
            completer = cached[1]
            if completer is not None:
                try:
                    return completer(source_value)
                except Exception:  # graphql-core completes the object again, and reports the error
                    pass
        if type(source_value) is TaskRow:  # graphql-core and the resolvers get the model, as always
            source_value = source_value.to_model()
        return super().execute_collected_subfields(
            parent_type, source_value, path, grouped_field_set, new_defer_usages, delivery_group_map
        )

    def _compiled(
        self, parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet
    ) -> tuple[GroupedFieldSet, Completer | None]:
        """The completer of this selection (None when it is not plain), with the set it was made for.

        In an operation whose selections are static, the grouped field set is one `collect_subfields`
        keeps for the process, and what its completer does depends only on the type and that set: it
        is made once per process. Anywhere else it is made once per request."""
        shared_key = None
        if self._static():  # the set is one `collect_subfields` keeps for the process
            shared_key = (parent_type, id(grouped_field_set))
            shared = _selection_completers.get(shared_key)
            if shared is not None:
                return shared
        try:
            compiled: tuple[GroupedFieldSet, Completer | None] = (
                grouped_field_set,
                self._object_completer(parent_type, grouped_field_set),
            )
        except NotPlain:
            compiled = (grouped_field_set, None)
        if shared_key is not None:
            if len(_selection_completers) >= SELECTION_COMPLETERS_MAX:
                _selection_completers.clear()  # bounded like the parser cache: start afresh
            _selection_completers[shared_key] = compiled  # the set keeps its nodes, so their ids, alive
        return compiled

    def collect_subfields(self, return_type: GraphQLObjectType, field_details_list: Any) -> Any:
        """graphql-core's collection of the subfields of these field nodes, made once per process for
        an operation whose selections are static: then it depends on the type and the nodes alone."""
        if not self._static():
            return super().collect_subfields(return_type, field_details_list)
        key = (return_type, *[id(details.node) for details in field_details_list])
        entry = _collected_subfields.get(key)
        if entry is None:
            entry = (field_details_list, super().collect_subfields(return_type, field_details_list))
            if len(_collected_subfields) >= SELECTION_COMPLETERS_MAX:
                _collected_subfields.clear()
            _collected_subfields[key] = entry  # the list keeps its nodes, so their ids, alive
        return entry[1]

    def _static(self) -> bool:
        """Whether this operation's selections are static (api_graphql.execution.is_static)."""
        static = self._static_selections
        if static is None:
            static = self._static_selections = is_static(self.operation, self.fragments)
        return static

    def _object_completer(self, object_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet) -> Completer:
        key = (object_type, id(grouped_field_set))
        cached = self._plain_completers.get(key)
        if cached is not None:
            if cached[1] is None:
                raise NotPlain
            return cached[1]
        plan = plan_of(object_type)
        if plan is None:
            raise NotPlain
        signature = tuple(
            (response_name, details[0].node.name.value, bool(details[0].node.arguments))
            for response_name, details in grouped_field_set.items()
        )
        shared = _leaf_completers.get((object_type, signature))
        if shared is not None:
            self._plain_completers[key] = (grouped_field_set, shared)
            return shared
        leaves_only = True
        steps: list[tuple[str, Getter, Completer]] = []
        for response_name, field_details_list in grouped_field_set.items():
            node = field_details_list[0].node
            name = node.name.value
            if name == "__typename":
                steps.append((response_name, partial(_constant, object_type.name), _same))
                continue
            getter = plan.get(name)
            if getter is None or node.arguments:
                raise NotPlain
            value_type = object_type.fields[name].type
            leaves_only = leaves_only and _is_leaf(value_type)
            steps.append((response_name, getter, self._value_completer(value_type, field_details_list)))

        def complete_fields(source: Any) -> dict[str, Any]:
            return {response_name: finish(get(source)) for response_name, get, finish in steps}

        complete: Completer = complete_fields
        if leaves_only and len(_leaf_completers) < LEAF_COMPLETERS_MAX:
            if object_type.name == "Task":  # kept for the process, so its results can be remembered
                complete = _remembering(complete_fields)
            _leaf_completers[(object_type, signature)] = complete
        elif object_type.name == "TaskEdge" and self._static():  # kept for the process (`_compiled`)
            complete = _remembering_edges(complete_fields)
        self._plain_completers[key] = (grouped_field_set, complete)
        return complete

    def _value_completer(self, graphql_type: GraphQLOutputType, field_details_list: Any) -> Completer:
        """How to complete a value of `graphql_type`, or NotPlain."""
        nullable = not isinstance(graphql_type, GraphQLNonNull)
        if isinstance(graphql_type, GraphQLNonNull):
            graphql_type = graphql_type.of_type
        if isinstance(graphql_type, GraphQLScalarType | GraphQLEnumType):
            return _leaf(graphql_type, nullable=nullable)
        inner: Completer
        if isinstance(graphql_type, GraphQLList):
            item = self._value_completer(graphql_type.of_type, field_details_list)
            # A cached page's edges are one list while the page is unchanged (PageEdges): what a
            # selection kept for the process makes of them is kept beside them.
            remember = self._static() and _named_type(graphql_type.of_type).name == "TaskEdge"

            def complete_list(values: Any) -> Any:
                if remember and type(values) is PageEdges:
                    completed = values.completed.get(item)
                    if completed is None:
                        completed = RenderedList([item(value) for value in values])
                        if len(values.completed) >= PAGE_SELECTIONS_MAX:
                            values.completed.clear()
                        values.completed[item] = completed
                    return completed
                return [item(value) for value in values]

            inner = complete_list
        elif isinstance(graphql_type, GraphQLObjectType) and plan_of(graphql_type) is not None:
            grouped_field_set, defer_usages, _forbidden = self.collect_subfields(graphql_type, field_details_list)
            if defer_usages:
                raise NotPlain
            inner = self._object_completer(graphql_type, grouped_field_set)
        else:  # interfaces, unions, types that are not plain
            raise NotPlain

        def complete(value: Any) -> Any:
            if value is None:
                if nullable:
                    return None
                raise NotPlain  # graphql-core reports a null in a non-null field, with its path
            return inner(value)

        return complete


def _named_type(graphql_type: GraphQLOutputType) -> Any:
    """The type under any list and non-null wrappers."""
    while isinstance(graphql_type, GraphQLNonNull | GraphQLList):
        graphql_type = graphql_type.of_type
    return graphql_type


def _is_leaf(graphql_type: GraphQLOutputType) -> bool:
    """A scalar or enum, or a list of them (nullable or not at any level)."""
    return isinstance(_named_type(graphql_type), GraphQLScalarType | GraphQLEnumType)


def _same(value: Any) -> Any:
    return value


def _constant(value: Any, _source: Any) -> Any:
    return value
