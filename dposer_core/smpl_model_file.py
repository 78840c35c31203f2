"""Numpy-only reader of SMPL body-model files (``.npz`` or the original ``.pkl``), usable from
Blender's Python (no torch, no scipy, no chumpy).

The original SMPL ``.pkl`` files were pickled under Python 2 with ``chumpy`` arrays (``chumpy.ch.Ch``)
and a ``scipy.sparse`` J-regressor. :func:`read_smpl_model_file` unpickles them with a restricted
unpickler that turns chumpy / scipy.sparse objects into inert stubs, then recovers their arrays
(a chumpy ``Ch``'s value is its ``x`` attribute; a sparse matrix is densified from its
``data``/``indices``/``indptr``). Only an exact list of (module, name) pairs is ever imported
(numpy's array / dtype / scalar reconstruction and a few builtins); chumpy and scipy.sparse
classes become stubs without importing anything, and any other reference makes the file
"not an SMPL model file".

Returned arrays (V vertices, J joints = 24 for SMPL, F faces, K shape components, P = 9 (J-1)):
    v_template (V,3) float64 rest mesh     shapedirs (V,3,K) float64     posedirs (V,3,P) float64
    J_regressor (J,V) float64 (dense)      weights (V,J) float64 (skinning)
    kintree_table (2,J) int64 (row 0: parents, root's is 2**32-1 or -1; row 1: joint ids)
    f (F,3) int64 faces                    + any other numeric entries of the file (e.g. J (J,3))

``smplx.SMPL`` accepts this dict as ``data_struct=smplx.utils.Struct(**d)``; :func:`write_clean_npz`
writes it as a chumpy-free ``.npz``.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

REQUIRED_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")


class SMPLModelFileError(ValueError):
    """The file is missing, unreadable or lacks an SMPL array; the message names file and reason."""


class _Stub:
    """Inert stand-in for a class we do not import (chumpy, scipy.sparse, anything unknown)."""

    _module = ""
    _name = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> "_Stub":
        obj = object.__new__(cls)
        obj.__dict__["_args"] = args
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and (state[0] is None or isinstance(state[0], dict)):
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["_state"] = state


_STUBS: dict[tuple[str, str], type] = {}


def _stub_class(module: str, name: str) -> type:
    key = (module, name)
    if key not in _STUBS:
        _STUBS[key] = type(f"Stub_{name}", (_Stub,), {"_module": module, "_name": name})
    return _STUBS[key]


def _allowed() -> dict[tuple[str, str], Any]:
    """The exact (module, name) pairs a model file may refer to, resolved without importing by name."""
    import builtins
    import codecs
    import collections
    import copyreg

    core = getattr(np, "_core", None) or np.core  # numpy 2 moved numpy.core to numpy._core
    out: dict[tuple[str, str], Any] = {}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        out[(mod, "_reconstruct")] = core.multiarray._reconstruct
        out[(mod, "scalar")] = core.multiarray.scalar
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):
        out[(mod, "_frombuffer")] = core.numeric._frombuffer
    out[("numpy", "ndarray")] = np.ndarray
    out[("numpy", "dtype")] = np.dtype
    for mod in ("copy_reg", "copyreg"):
        out[(mod, "_reconstructor")] = copyreg._reconstructor
    for mod in ("__builtin__", "builtins"):
        for name in ("object", "set", "frozenset", "slice", "complex", "list", "dict", "tuple"):
            out[(mod, name)] = getattr(builtins, name)
    out[("_codecs", "encode")] = codecs.encode  # bytes in protocol-2 pickles written by Python 3
    out[("collections", "OrderedDict")] = collections.OrderedDict
    return out


_SPARSE_STUBS = {(f"scipy.sparse.{m}", f"{k}_matrix") for k in ("csc", "csr", "coo")
                 for m in (k, f"_{k}", "compressed", "base")}
"""The scipy.sparse classes SMPL files hold (old and new module paths): read as inert stubs."""


class _SafeUnpickler(pickle.Unpickler):
    """Resolves only the exact pairs of :func:`_allowed`; chumpy and the SMPL sparse classes become
    inert stubs (nothing is imported); anything else stops the load."""

    _ALLOWED: dict[tuple[str, str], Any] | None = None

    def find_class(self, module: str, name: str) -> Any:
        if _SafeUnpickler._ALLOWED is None:
            _SafeUnpickler._ALLOWED = _allowed()
        hit = _SafeUnpickler._ALLOWED.get((module, name))
        if hit is not None:
            return hit
        if (module, name) in _SPARSE_STUBS or module == "chumpy" or module.startswith("chumpy."):
            return _stub_class(module, name)
        raise pickle.UnpicklingError(f"it refers to {module[:60]}.{name[:60]}, which SMPL model files never hold")


def _densify_sparse(obj: _Stub) -> np.ndarray | None:
    d = obj.__dict__
    shape = d.get("_shape", d.get("shape"))
    if shape is None or "data" not in d:
        return None
    shape = tuple(int(s) for s in shape)
    data = np.asarray(d["data"], dtype=np.float64)
    out = np.zeros(shape, dtype=np.float64)
    kind = obj._name.lower()
    if kind.startswith(("csc", "csr")):
        indices, indptr = np.asarray(d["indices"]), np.asarray(d["indptr"])
        for k in range(len(indptr) - 1):
            sl = slice(int(indptr[k]), int(indptr[k + 1]))
            if kind.startswith("csc"):
                np.add.at(out, (indices[sl], np.full(sl.stop - sl.start, k)), data[sl])
            else:
                np.add.at(out, (np.full(sl.stop - sl.start, k), indices[sl]), data[sl])
        return out
    if kind.startswith("coo"):
        if "coords" in d:
            row, col = (np.asarray(c) for c in d["coords"])
        else:
            row, col = np.asarray(d["row"]), np.asarray(d["col"])
        np.add.at(out, (row, col), data)
        return out
    return None


def _to_array(v: Any) -> np.ndarray | None:
    """A numeric ndarray from a file value (ndarray, chumpy stub, sparse stub, number list), or None."""
    if isinstance(v, _Stub):
        if "scipy" in v._module or "sparse" in v._module:
            return _densify_sparse(v)
        if "x" in v.__dict__:  # chumpy Ch: the value lives in .x
            return _to_array(v.__dict__["x"])
        return None
    if isinstance(v, np.ndarray):
        return v if v.dtype.kind in "biuf" else None
    if isinstance(v, (list, tuple, int, float)) and not isinstance(v, bool):
        try:
            a = np.asarray(v)
        except (ValueError, TypeError):
            return None
        return a if a.dtype.kind in "biuf" else None
    return None


def _load_raw(path: Path) -> dict[str, Any]:
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    with open(path, "rb") as fh:
        raw = fh.read()
    return _SafeUnpickler(io.BytesIO(raw), encoding="latin1").load()


def read_smpl_model_file(path: str | Path) -> dict[str, np.ndarray]:
    """Reads an SMPL model (``.npz``, or ``.pkl`` with or without chumpy) into plain numpy arrays.

    Returns:
        dict with (at least) v_template (V,3), shapedirs (V,3,K), posedirs (V,3,P),
        J_regressor (J,V), weights (V,J), kintree_table (2,J) int64, f (F,3) int64; floats are float64.
    Raises:
        SMPLModelFileError: not found / unreadable / missing or malformed key (named in the message).
    """
    path = Path(path)
    where = f"SMPL model file {str(path)!r}"
    if not path.is_file():
        raise SMPLModelFileError(f"{where}: file not found. Download the SMPL model (e.g. "
                                 f"basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl) and point to it.")
    try:
        raw = _load_raw(path)
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001  SystemExit etc. from a hostile pickle included
        why = str(e).splitlines()[0][:200] if isinstance(e, pickle.UnpicklingError) and str(e) else type(e).__name__
        raise SMPLModelFileError(f"{where}: cannot be read: not an SMPL model file ({why}). Use the .pkl or .npz from the "
                                 "SMPL website (e.g. basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl).") from None
    if not isinstance(raw, dict):
        raise SMPLModelFileError(f"{where}: not an SMPL model (top level is {type(raw).__name__}, not a dict).")
    out: dict[str, np.ndarray] = {}
    for k, v in raw.items():
        a = _to_array(v)
        if a is not None:
            out[str(k)] = a
    for k in REQUIRED_KEYS:
        if k not in out:
            raise SMPLModelFileError(f"{where}: missing key {k!r} (or it could not be read without chumpy). "
                                     f"Is this an SMPL model file?")
    for k in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights"):
        out[k] = out[k].astype(np.float64)
    out["kintree_table"] = out["kintree_table"].astype(np.int64)
    out["f"] = out["f"].astype(np.int64)
    V = out["v_template"].shape[0]
    J = out["kintree_table"].shape[-1]
    checks = {"v_template": (V, 3), "J_regressor": (J, V), "weights": (V, J), "kintree_table": (2, J)}
    for k, shape in checks.items():
        if out[k].shape != shape:
            raise SMPLModelFileError(f"{where}: {k!r} has shape {out[k].shape}, expected {shape}.")
    for k in ("shapedirs", "posedirs"):
        if out[k].ndim != 3 or out[k].shape[:2] != (V, 3):
            raise SMPLModelFileError(f"{where}: {k!r} has shape {out[k].shape}, expected ({V}, 3, n).")
    if out["f"].ndim != 2 or out["f"].shape[1] != 3 or (out["f"].size and out["f"].max() >= V):
        raise SMPLModelFileError(f"{where}: 'f' must be (F,3) vertex indices < {V}, got {out['f'].shape}.")
    return out


def parents(model: dict[str, np.ndarray]) -> np.ndarray:
    """(J,) int64 parent index per joint (-1 for the root) from ``kintree_table``."""
    p = model["kintree_table"][0].astype(np.int64).copy()
    p[0] = -1
    return p


def rest_joints(model: dict[str, np.ndarray], betas: np.ndarray | None = None) -> np.ndarray:
    """(J,3) rest joint positions J_regressor @ (v_template + shapedirs @ betas)."""
    v = model["v_template"]
    if betas is not None:
        b = np.asarray(betas, dtype=np.float64).reshape(-1)
        v = v + model["shapedirs"][:, :, : b.shape[0]] @ b
    return model["J_regressor"] @ v


def write_clean_npz(src: str | Path, dst: str | Path) -> Path:
    """Converts an SMPL model file (e.g. a chumpy ``.pkl``) to a clean, chumpy-free ``.npz``."""
    dst = Path(dst)
    np.savez(dst, **read_smpl_model_file(src))
    return dst if dst.suffix == ".npz" else dst.with_name(dst.name + ".npz")
