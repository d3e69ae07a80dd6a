"""Read PyTorch's legacy (non-zip) `.pth` state dicts without PyTorch.

The legacy format, as `torch.save(..., _use_new_zipfile_serialization=False)` writes it, is five
things one after the other in one file:

1. a pickle of the magic number, 2. a pickle of the protocol version (1001), 3. a pickle of
   system information (byte order, type sizes),
4. a pickle of the state dict: an OrderedDict of name -> `torch._utils._rebuild_tensor_v2(
   storage, offset, size, stride, requires_grad, hooks)`, each storage a persistent id
   `("storage", torch.XStorage, key, location, numel, view)`,
5. a pickle of the list of storage keys, then each storage in that order: its element count
   (int64, little-endian) and its raw little-endian bytes.

`read_state_dict` unpickles with a restricted unpickler that knows only the few globals above and
refuses anything else (a pickle can name any callable: `os.system` included), then views the raw
bytes with numpy. `write_state_dict` writes the same format, so tests need neither torch nor a
real checkpoint.
"""

from __future__ import annotations

import io
import pickle
import struct
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
SYS_INFO = {
    "protocol_version": PROTOCOL_VERSION,
    "little_endian": True,
    "type_sizes": {"short": 2, "int": 4, "long": 4},
}
# torch storage class -> numpy dtype of its elements (always stored little-endian)
STORAGE_DTYPES: dict[str, np.dtype] = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}
REBUILD_TENSOR = ("torch._utils", "_rebuild_tensor_v2")


class TorchFormatError(ValueError):
    """The file is not a legacy PyTorch state dict this reader can safely read."""


@dataclass(frozen=True)
class _StorageType:
    name: str


@dataclass(frozen=True)
class _Storage:
    """A storage named by the pickle; its bytes come later in the file."""

    key: str
    dtype: np.dtype
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(
    storage: Any, offset: Any, size: Any, stride: Any, *_: Any
) -> _TensorRef:  # requires_grad, backward hooks (and metadata in newer files) do not matter
    if not isinstance(storage, _Storage):
        raise TorchFormatError(f"tensor built on {type(storage).__name__}, not on a storage")
    return _TensorRef(storage, int(offset), tuple(map(int, size)), tuple(map(int, stride)))


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only what a state dict needs; any other global is refused before it is
    looked up, so nothing from the file is ever imported or called."""

    def __init__(self, file: BinaryIO, storages: dict[str, _Storage] | None) -> None:
        super().__init__(file)
        self.storages = storages  # None: this pickle must not name storages

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == REBUILD_TENSOR:
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise TorchFormatError(
            f"refusing to load {module}.{name}: a legacy state dict needs only "
            "collections.OrderedDict, torch._utils._rebuild_tensor_v2 and torch storage types"
        )

    def persistent_load(self, pid: Any) -> _Storage:
        if self.storages is None:
            raise TorchFormatError("a storage outside the state dict")
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise TorchFormatError(f"unexpected persistent id {pid!r:.80}")
        _, kind, key, _location, numel, view = pid
        if not isinstance(kind, _StorageType):
            raise TorchFormatError(f"storage of unknown type {kind!r:.80}")
        storage = self.storages.setdefault(
            str(key), _Storage(str(key), STORAGE_DTYPES[kind.name], int(numel))
        )
        if storage.dtype != STORAGE_DTYPES[kind.name] or storage.numel != int(numel):
            raise TorchFormatError(f"storage {key} is described twice, differently")
        if view is not None:  # torch has written None here since its first release
            raise TorchFormatError(f"storage {key} is a storage view, which is not supported")
        return storage


def _load_pickle(f: BinaryIO, storages: dict[str, _Storage] | None = None) -> Any:
    try:
        return _RestrictedUnpickler(f, storages).load()
    except TorchFormatError:
        raise
    except Exception as e:  # truncated or garbled bytes: pickle raises many kinds
        raise TorchFormatError(f"not a legacy PyTorch file ({type(e).__name__}: {e})") from None


def read_state_dict(path: str | Path) -> OrderedDict[str, np.ndarray]:
    """name -> numpy array (own memory, C order) for every tensor of a legacy `.pth` file."""
    with open(path, "rb") as f:
        try:
            return _read(f)
        except TorchFormatError as e:
            raise TorchFormatError(f"{path}: {e}") from None


def _read(f: BinaryIO) -> OrderedDict[str, np.ndarray]:
    head = f.read(4)
    if head.startswith(b"PK"):
        raise TorchFormatError("zip-format checkpoint; only the legacy format is supported")
    f.seek(0)
    if _load_pickle(f) != MAGIC_NUMBER:
        raise TorchFormatError("no PyTorch legacy magic number")
    if _load_pickle(f) != PROTOCOL_VERSION:
        raise TorchFormatError("unsupported protocol version")
    sys_info = _load_pickle(f)
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise TorchFormatError("only little-endian files are supported")
    storages: dict[str, _Storage] = {}
    state = _load_pickle(f, storages)
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, _TensorRef) for k, v in state.items()
    ):
        raise TorchFormatError("the pickle is not a flat state dict of name -> tensor")
    keys = _load_pickle(f)
    if not isinstance(keys, list) or sorted(map(str, keys)) != sorted(storages):
        raise TorchFormatError("the storage key list does not match the tensors' storages")
    data = {str(key): _read_storage(f, storages[str(key)]) for key in keys}
    return OrderedDict((name, _materialise(ref, data)) for name, ref in state.items())


def _read_storage(f: BinaryIO, storage: _Storage) -> np.ndarray:
    header = f.read(8)
    if len(header) != 8:
        raise TorchFormatError(f"file ends before storage {storage.key}")
    (count,) = struct.unpack("<q", header)
    if count != storage.numel:
        raise TorchFormatError(f"storage {storage.key}: {count} elements, expected {storage.numel}")
    raw = f.read(count * storage.dtype.itemsize)
    if len(raw) != count * storage.dtype.itemsize:
        raise TorchFormatError(f"file ends inside storage {storage.key}")
    return np.frombuffer(raw, storage.dtype)


def _materialise(ref: _TensorRef, data: dict[str, np.ndarray]) -> np.ndarray:
    """The tensor's elements as a new array, after checking it stays inside its storage (a
    strided view past the end would read foreign memory)."""
    flat, offset = data[ref.storage.key], ref.offset
    if len(ref.size) != len(ref.stride) or min((*ref.size, *ref.stride, offset), default=0) < 0:
        raise TorchFormatError(f"bad tensor geometry size={ref.size} stride={ref.stride}")
    if 0 in ref.size:
        return np.zeros(ref.size, flat.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride, strict=True))
    if last >= len(flat):
        raise TorchFormatError(f"tensor reaches element {last} of a storage of {len(flat)}")
    item = flat.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        flat[offset:], ref.size, tuple(s * item for s in ref.stride), writeable=False
    )
    return np.array(view, dtype=flat.dtype.newbyteorder("="), order="C")


# --- writer: the same format, for tests (no torch needed to make a checkpoint) ---------------


@dataclass(frozen=True)
class StoredTensor:
    """How `write_state_dict` lays one tensor out: `storage` (a flat array, shared between
    tensors that name the same `key`) viewed from `offset` with `size` and element `stride`."""

    key: str
    storage: np.ndarray
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def contiguous(key: str, array: np.ndarray) -> StoredTensor:
    """A C-ordered tensor with a storage of its own."""
    c_order = np.array(array, order="C")  # not ascontiguousarray: it makes a 0-d array 1-d
    strides = tuple(s // array.itemsize for s in c_order.strides)
    return StoredTensor(key, c_order.reshape(-1), 0, array.shape, strides)


def write_state_dict(path: str | Path, tensors: Mapping[str, StoredTensor]) -> None:
    names = {dtype: name for name, dtype in STORAGE_DTYPES.items()}
    storages: dict[str, np.ndarray] = {}
    for t in tensors.values():
        if storages.setdefault(t.key, t.storage) is not t.storage:
            raise ValueError(f"two different arrays for storage {t.key}")
    out = io.BytesIO()
    for header in (MAGIC_NUMBER, PROTOCOL_VERSION, SYS_INFO):
        out.write(pickle.dumps(header, protocol=2))
    state = _Pickle()
    state.call(("collections", "OrderedDict"), ())
    state.op(b"(")  # MARK: key, value pairs follow
    for name, t in tensors.items():
        state.value(name)
        kind = ("torch", names[np.dtype(t.storage.dtype).newbyteorder("<")])
        pid = ("storage", _Global(*kind), t.key, "cpu", t.storage.size, None)
        args = (_PersistentId(pid), t.offset, t.size, t.stride, False, _Call(_ORDERED_DICT, ()))
        state.call(REBUILD_TENSOR, args)
    state.op(b"u.")  # SETITEMS, STOP
    out.write(state.bytes())
    out.write(pickle.dumps(list(storages), protocol=2))
    for storage in storages.values():
        little = storage.astype(storage.dtype.newbyteorder("<"), copy=False)
        out.write(struct.pack("<q", storage.size) + little.tobytes())
    Path(path).write_bytes(out.getvalue())


@dataclass(frozen=True)
class _Global:
    module: str
    name: str


@dataclass(frozen=True)
class _Call:
    func: _Global
    args: tuple


@dataclass(frozen=True)
class _PersistentId:
    pid: tuple


_ORDERED_DICT = _Global("collections", "OrderedDict")


class _Pickle:
    """Protocol-2 opcodes for the few objects a state dict holds. Hand-written because the
    standard pickler only names a global it can import, and torch is not installed."""

    def __init__(self) -> None:
        self.parts = [b"\x80\x02"]  # PROTO 2

    def op(self, code: bytes) -> None:
        self.parts.append(code)

    def call(self, func: tuple[str, str], args: tuple) -> None:
        self.value(_Call(_Global(*func), args))

    def value(self, v: Any) -> None:
        if v is None or isinstance(v, bool):
            self.op({None: b"N", True: b"\x88", False: b"\x89"}[v])
        elif isinstance(v, int):
            self.op(b"J" + struct.pack("<i", v))  # BININT: the writer's sizes all fit
        elif isinstance(v, str):
            raw = v.encode()
            self.op(b"X" + struct.pack("<I", len(raw)) + raw)
        elif isinstance(v, tuple):
            self.op(b"(")
            for item in v:
                self.value(item)
            self.op(b"t")
        elif isinstance(v, _Global):
            self.op(f"c{v.module}\n{v.name}\n".encode())
        elif isinstance(v, _Call):
            self.value(v.func)
            self.value(v.args)
            self.op(b"R")
        elif isinstance(v, _PersistentId):
            self.value(v.pid)
            self.op(b"Q")
        else:
            raise TypeError(f"cannot write {type(v).__name__}")

    def bytes(self) -> bytes:
        return b"".join(self.parts)
