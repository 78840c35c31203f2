"""Issue 12, point 2: the SMPL ``.pkl`` reader imports only an exact list of (module, name) pairs."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dposer_core import smpl_model_file as smf

REPO = Path(__file__).resolve().parents[2]
F2PY = b"\x80\x02cnumpy.f2py.__main__\nndarray\n."  # the audit's pickle (issue 12): importing it runs f2py's CLI


def test_f2py_pickle_is_refused_without_importing_anything(tmp_path: Path) -> None:
    p = tmp_path / "evil.pkl"
    p.write_bytes(F2PY)
    code = (f"import sys; from dposer_core.smpl_model_file import read_smpl_model_file, SMPLModelFileError\n"
            f"try:\n    read_smpl_model_file({str(p)!r})\nexcept SMPLModelFileError as e:\n    print('REFUSED', e)\n"
            "print('f2py imported:', any(m.startswith('numpy.f2py') for m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr  # no SystemExit escaped
    assert "REFUSED" in out.stdout and "not an SMPL model file" in out.stdout and "numpy.f2py" in out.stdout
    assert "f2py imported: False" in out.stdout


@pytest.mark.parametrize("module,name", [("numpy", "load"), ("numpy.testing", "ndarray"), ("os", "system"),
                                         ("numpy.core.multiarray", "frombuffer"), ("builtins", "eval"),
                                         ("scipy.sparse", "load_npz")])
def test_only_exact_pairs(tmp_path: Path, module: str, name: str) -> None:
    p = tmp_path / "x.pkl"
    p.write_bytes(b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n.")
    with pytest.raises(smf.SMPLModelFileError, match="never hold"):
        smf.read_smpl_model_file(p)


def test_base_exceptions_during_load_become_one_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "x.pkl"
    p.write_bytes(pickle.dumps({"a": 1}, protocol=2))
    for exc in (SystemExit(2), MemoryError(), RecursionError("deep")):
        def boom(path: Path, exc: BaseException = exc) -> dict:
            raise exc
        monkeypatch.setattr(smf, "_load_raw", boom)
        with pytest.raises(smf.SMPLModelFileError, match="not an SMPL model file"):
            smf.read_smpl_model_file(p)


def test_allowed_pairs_still_read_plain_and_sparse_pickles(tmp_path: Path) -> None:
    import scipy.sparse

    d = {"v_template": np.zeros((4, 3)), "J_regressor": scipy.sparse.csc_matrix(np.eye(2, 4)),
         "kintree_table": np.array([[4294967295, 0], [0, 1]]), "f": np.array([[0, 1, 2]], np.uint32)}
    p = tmp_path / "m.pkl"
    p.write_bytes(pickle.dumps(d, protocol=2))
    raw = smf._load_raw(p)
    assert np.array_equal(smf._to_array(raw["J_regressor"]), np.eye(2, 4))
    assert raw["f"].dtype == np.uint32
