import datetime

from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_UNSPECIFIED: _ClassVar[Priority]
    PRIORITY_LOW: _ClassVar[Priority]
    PRIORITY_MEDIUM: _ClassVar[Priority]
    PRIORITY_HIGH: _ClassVar[Priority]

class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATUS_UNSPECIFIED: _ClassVar[Status]
    STATUS_TODO: _ClassVar[Status]
    STATUS_IN_PROGRESS: _ClassVar[Status]
    STATUS_COMPLETED: _ClassVar[Status]

class TaskOrdering(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_ORDERING_UNSPECIFIED: _ClassVar[TaskOrdering]
    TASK_ORDERING_CREATED_AT: _ClassVar[TaskOrdering]
    TASK_ORDERING_CREATED_AT_DESC: _ClassVar[TaskOrdering]
    TASK_ORDERING_DUE_DATE: _ClassVar[TaskOrdering]
    TASK_ORDERING_DUE_DATE_DESC: _ClassVar[TaskOrdering]
    TASK_ORDERING_PRIORITY: _ClassVar[TaskOrdering]
    TASK_ORDERING_PRIORITY_DESC: _ClassVar[TaskOrdering]

class TaskEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_EVENT_TYPE_UNSPECIFIED: _ClassVar[TaskEventType]
    TASK_EVENT_TYPE_CREATED: _ClassVar[TaskEventType]
    TASK_EVENT_TYPE_UPDATED: _ClassVar[TaskEventType]
    TASK_EVENT_TYPE_COMPLETED: _ClassVar[TaskEventType]
    TASK_EVENT_TYPE_DELETED: _ClassVar[TaskEventType]
    TASK_EVENT_TYPE_GAP: _ClassVar[TaskEventType]
PRIORITY_UNSPECIFIED: Priority
PRIORITY_LOW: Priority
PRIORITY_MEDIUM: Priority
PRIORITY_HIGH: Priority
STATUS_UNSPECIFIED: Status
STATUS_TODO: Status
STATUS_IN_PROGRESS: Status
STATUS_COMPLETED: Status
TASK_ORDERING_UNSPECIFIED: TaskOrdering
TASK_ORDERING_CREATED_AT: TaskOrdering
TASK_ORDERING_CREATED_AT_DESC: TaskOrdering
TASK_ORDERING_DUE_DATE: TaskOrdering
TASK_ORDERING_DUE_DATE_DESC: TaskOrdering
TASK_ORDERING_PRIORITY: TaskOrdering
TASK_ORDERING_PRIORITY_DESC: TaskOrdering
TASK_EVENT_TYPE_UNSPECIFIED: TaskEventType
TASK_EVENT_TYPE_CREATED: TaskEventType
TASK_EVENT_TYPE_UPDATED: TaskEventType
TASK_EVENT_TYPE_COMPLETED: TaskEventType
TASK_EVENT_TYPE_DELETED: TaskEventType
TASK_EVENT_TYPE_GAP: TaskEventType

class Task(_message.Message):
    __slots__ = ("id", "owner_id", "title", "description", "priority", "status", "completed", "due_date", "tags", "created_at", "updated_at", "completed_at", "version")
    ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    DUE_DATE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    owner_id: int
    title: str
    description: str
    priority: Priority
    status: Status
    completed: bool
    due_date: _timestamp_pb2.Timestamp
    tags: _containers.RepeatedScalarFieldContainer[str]
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    version: int
    def __init__(self, id: _Optional[str] = ..., owner_id: _Optional[int] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., priority: _Optional[_Union[Priority, str]] = ..., status: _Optional[_Union[Status, str]] = ..., completed: _Optional[bool] = ..., due_date: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tags: _Optional[_Iterable[str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[int] = ...) -> None: ...

class CreateTaskRequest(_message.Message):
    __slots__ = ("title", "description", "priority", "status", "completed", "due_date", "tags")
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    DUE_DATE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    title: str
    description: str
    priority: Priority
    status: Status
    completed: bool
    due_date: _timestamp_pb2.Timestamp
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, title: _Optional[str] = ..., description: _Optional[str] = ..., priority: _Optional[_Union[Priority, str]] = ..., status: _Optional[_Union[Status, str]] = ..., completed: _Optional[bool] = ..., due_date: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tags: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "ordering", "status", "priority", "completed", "tag", "due_before", "due_after", "search", "only_mine")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ORDERING_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    DUE_BEFORE_FIELD_NUMBER: _ClassVar[int]
    DUE_AFTER_FIELD_NUMBER: _ClassVar[int]
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    ONLY_MINE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    ordering: TaskOrdering
    status: Status
    priority: Priority
    completed: bool
    tag: str
    due_before: _timestamp_pb2.Timestamp
    due_after: _timestamp_pb2.Timestamp
    search: str
    only_mine: bool
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., ordering: _Optional[_Union[TaskOrdering, str]] = ..., status: _Optional[_Union[Status, str]] = ..., priority: _Optional[_Union[Priority, str]] = ..., completed: _Optional[bool] = ..., tag: _Optional[str] = ..., due_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., due_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., search: _Optional[str] = ..., only_mine: _Optional[bool] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("tasks", "next_page_token")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    next_page_token: str
    def __init__(self, tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateTaskRequest(_message.Message):
    __slots__ = ("id", "task", "update_mask", "expected_version")
    ID_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    task: Task
    update_mask: _field_mask_pb2.FieldMask
    expected_version: int
    def __init__(self, id: _Optional[str] = ..., task: _Optional[_Union[Task, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., expected_version: _Optional[int] = ...) -> None: ...

class UpdateTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class DeleteTaskRequest(_message.Message):
    __slots__ = ("id", "expected_version")
    ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    expected_version: int
    def __init__(self, id: _Optional[str] = ..., expected_version: _Optional[int] = ...) -> None: ...

class DeleteTaskResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchTasksRequest(_message.Message):
    __slots__ = ("status", "priority", "tag", "only_mine", "after")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    ONLY_MINE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    status: Status
    priority: Priority
    tag: str
    only_mine: bool
    after: str
    def __init__(self, status: _Optional[_Union[Status, str]] = ..., priority: _Optional[_Union[Priority, str]] = ..., tag: _Optional[str] = ..., only_mine: _Optional[bool] = ..., after: _Optional[str] = ...) -> None: ...

class TaskEvent(_message.Message):
    __slots__ = ("id", "type", "task_id", "owner_id", "version", "occurred_at", "task")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: TaskEventType
    task_id: str
    owner_id: int
    version: int
    occurred_at: _timestamp_pb2.Timestamp
    task: Task
    def __init__(self, id: _Optional[str] = ..., type: _Optional[_Union[TaskEventType, str]] = ..., task_id: _Optional[str] = ..., owner_id: _Optional[int] = ..., version: _Optional[int] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class SyncTasksRequest(_message.Message):
    __slots__ = ("request_id", "watch", "create", "update", "delete", "idempotency_key")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WATCH_FIELD_NUMBER: _ClassVar[int]
    CREATE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    watch: WatchTasksRequest
    create: CreateTaskRequest
    update: UpdateTaskRequest
    delete: DeleteTaskRequest
    idempotency_key: str
    def __init__(self, request_id: _Optional[str] = ..., watch: _Optional[_Union[WatchTasksRequest, _Mapping]] = ..., create: _Optional[_Union[CreateTaskRequest, _Mapping]] = ..., update: _Optional[_Union[UpdateTaskRequest, _Mapping]] = ..., delete: _Optional[_Union[DeleteTaskRequest, _Mapping]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class SyncTasksResponse(_message.Message):
    __slots__ = ("result", "error", "event")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    result: SyncTasksResult
    error: SyncTasksError
    event: TaskEvent
    def __init__(self, result: _Optional[_Union[SyncTasksResult, _Mapping]] = ..., error: _Optional[_Union[SyncTasksError, _Mapping]] = ..., event: _Optional[_Union[TaskEvent, _Mapping]] = ...) -> None: ...

class SyncTasksResult(_message.Message):
    __slots__ = ("request_id", "task", "deleted", "watching_after", "idempotent_replayed")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    WATCHING_AFTER_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENT_REPLAYED_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    task: Task
    deleted: DeleteTaskResponse
    watching_after: str
    idempotent_replayed: bool
    def __init__(self, request_id: _Optional[str] = ..., task: _Optional[_Union[Task, _Mapping]] = ..., deleted: _Optional[_Union[DeleteTaskResponse, _Mapping]] = ..., watching_after: _Optional[str] = ..., idempotent_replayed: _Optional[bool] = ...) -> None: ...

class SyncTasksError(_message.Message):
    __slots__ = ("request_id", "code", "message", "details")
    class DetailsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    code: int
    message: str
    details: _containers.ScalarMap[str, str]
    def __init__(self, request_id: _Optional[str] = ..., code: _Optional[int] = ..., message: _Optional[str] = ..., details: _Optional[_Mapping[str, str]] = ...) -> None: ...
