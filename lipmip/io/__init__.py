"""Reading and writing networks.

``load`` picks the reader from the file name (``.npz``, ``.onnx``,
``.onnx.gz``, ``.pt``/``.pth``) or from the object's type (a PyTorch
``nn.Sequential``, a Flax or Equinox MLP, a list of ``(W, b)`` pairs);
``save`` writes ``.npz``, ``.onnx`` or ``.onnx.gz``. Every reader returns a
:class:`~lipmip.Network` or raises a :class:`~lipmip.errors.LipmipError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lipmip.errors import ModelFormatError
from lipmip.io.npz import load_npz, save_npz
from lipmip.network import Network

__all__ = ["load", "save", "load_npz", "save_npz"]


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in (".onnx.gz", ".npz", ".onnx", ".pt", ".pth"):
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def load(source: Any, **options: Any) -> Network:
    """Load a network from a file path or a framework object.

    Files: ``.npz`` (exchange format), ``.onnx`` / ``.onnx.gz`` (needs the
    ``onnx`` extra), ``.pt`` / ``.pth`` (a ``torch.nn.Sequential`` or a state
    dict saved with ``torch.save``; needs the ``torch`` extra; a pickled
    module runs code from the file, so load only files you trust).

    Objects: a ``Network`` (returned as is); a list of ``(W, b)`` pairs
    (``layout="out_in"``, the default, or ``"in_out"``; ``activations=`` to
    override ReLU-between-layers); a ``torch.nn.Sequential`` of Linear / ReLU /
    Flatten or a PyTorch state dict; an Equinox ``MLP`` / ``Sequential``; a
    Flax ``nnx.Sequential`` or a Flax linen parameter dict. ``layout`` and
    ``activations`` apply only to parameter lists and dicts.
    """
    if isinstance(source, Network):
        return source
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise ModelFormatError(f"{path}: no such file")
        if not path.is_file():
            raise ModelFormatError(f"{path}: not a file")
        suffix = _suffix(path)
        if suffix == ".npz":
            return load_npz(path, **options)
        if suffix in (".onnx", ".onnx.gz"):
            from lipmip.io.onnx_format import load_onnx

            return load_onnx(path, **options)
        if suffix in (".pt", ".pth"):
            from lipmip.io.torch_format import load_torch_file

            return load_torch_file(path, **options)
        raise ModelFormatError(f"{path}: unknown model file type {suffix!r} (use .npz, .onnx, .onnx.gz, .pt or .pth)")
    from lipmip.io.objects import load_object

    return load_object(source, **options)


def save(net: Network, path: str | Path) -> None:
    """Write ``net`` to ``.npz``, ``.onnx`` or ``.onnx.gz``, chosen by the file name."""
    if not isinstance(net, Network):
        raise ModelFormatError(f"save expects a lipmip.Network, got {type(net).__name__}")
    suffix = _suffix(Path(path))
    if suffix == ".npz":
        return save_npz(net, path)
    if suffix in (".onnx", ".onnx.gz"):
        from lipmip.io.onnx_format import save_onnx

        return save_onnx(net, path)
    raise ModelFormatError(f"{path}: cannot save to {suffix!r}; use .npz, .onnx or .onnx.gz")
