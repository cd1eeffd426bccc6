"""Reading PyTorch models: ``nn.Sequential`` modules, state dicts and
``.pt``/``.pth`` files (needs the ``torch`` extra).

A module is read as a chain of ``nn.Linear``, ``nn.ReLU``, ``nn.Flatten``,
``nn.Identity`` and dropout layers (nested ``nn.Sequential`` containers are
flattened); the rules for composing consecutive linear layers and repeated
or leading ReLUs are those of :func:`lipmip.io.objects.network_from_ops`.
Classes are matched exactly, not by ``isinstance``: a subclass may override
``forward``, and lipmip reads weights, not code.

Security: a file holding a whole pickled module can only be read by running
``pickle``, which executes code stored in the file. lipmip first tries
PyTorch's safe ``weights_only`` loader (enough for state dicts) and falls
back to full unpickling only when that refuses; load only files you trust.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lipmip.dependencies import optional_import
from lipmip.errors import LipmipError, ModelFormatError, UnsupportedOperatorError
from lipmip.io.objects import AffineOp, FlattenOp, ReluOp, affine_op, as_float64, comes_from, network_from_ops
from lipmip.network import Network

__all__ = ["load_torch_file", "network_from_state_dict", "network_from_torch"]

_PASS_THROUGH = ("Identity", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout")

_SUPPORTED = "Linear, ReLU, Flatten (of all non-batch dimensions), Identity, Dropout (read as the identity)"


def _torch() -> Any:
    return optional_import("torch", "reading PyTorch models")


def network_from_torch(
    module: Any,
    *,
    input_shape: Sequence[int] | None = None,
    name: str | None = None,
) -> Network:
    """The :class:`Network` computing what ``module`` computes in eval mode.

    ``module`` is an ``nn.Sequential`` (nested ones are flattened) or a
    single ``nn.Linear``. Weights are converted to float64; consecutive
    linear layers are composed into one; a ReLU after the last linear layer
    stays the output activation. ``input_shape`` (e.g. ``(1, 28, 28)``) is
    recorded and needs an ``nn.Flatten`` before the first linear layer.
    Raises :class:`UnsupportedOperatorError` naming the class and the
    module's name for any other layer.
    """
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise ModelFormatError(f"expected a torch.nn.Module, got {type(module).__name__}")
    ops = _module_ops(torch.nn, module, "")
    return network_from_ops(ops, input_shape=input_shape, name=name, source=f"the PyTorch {type(module).__name__}")


def _module_ops(nn: Any, module: Any, path: str) -> list[AffineOp | ReluOp | FlattenOp]:
    """The ops of ``module`` (named ``path`` inside the top-level container)."""
    kind = type(module)
    where = f"module {path!r}" if path else f"the top-level {kind.__name__}"
    if kind is nn.Sequential:
        ops: list[AffineOp | ReluOp | FlattenOp] = []
        for child_name, child in module.named_children():
            ops += _module_ops(nn, child, f"{path}.{child_name}" if path else child_name)
        return ops
    if kind is nn.Linear:
        return [affine_op(_tensor(module.weight, where), _tensor(module.bias, where), where)]
    if kind is nn.ReLU:
        return [ReluOp(where)]
    if kind is nn.Flatten:
        if module.start_dim != 1 or module.end_dim != -1:
            raise UnsupportedOperatorError(
                f"Flatten(start_dim={module.start_dim}, end_dim={module.end_dim}) at {where}: lipmip supports "
                "only Flatten() of all non-batch dimensions (start_dim=1, end_dim=-1)"
            )
        return [FlattenOp(where)]
    if kind.__name__ in _PASS_THROUGH and kind is getattr(nn, kind.__name__, None):
        return []
    raise UnsupportedOperatorError(
        f"PyTorch layer {kind.__name__} ({where}) is not supported; lipmip reads nn.Sequential of {_SUPPORTED}"
    )


def _tensor(value: Any, where: str) -> Any:
    """A parameter tensor as float64 numpy (``None`` stays ``None``)."""
    return None if value is None else as_float64(value, f"{where} parameter")


def network_from_state_dict(
    state: Mapping[str, Any],
    *,
    activations: Sequence[str] | None = None,
    input_shape: Sequence[int] | None = None,
    name: str | None = None,
) -> Network:
    """Read a state dict (``{"0.weight": ..., "0.bias": ..., "2.weight": ...}``)
    as linear layers in key order.

    A state dict records no activations: ReLU after every layer but the last
    is assumed unless ``activations`` says otherwise (save the whole module
    to keep a ReLU on the output). Every key must end in ``.weight`` (2-D) or
    ``.bias``; anything else (batch-norm statistics, convolution kernels)
    raises :class:`UnsupportedOperatorError` naming the key.
    """
    layers: dict[str, dict[str, Any]] = {}
    for key, value in state.items():
        if not (comes_from(value, "torch") or isinstance(value, np.ndarray)):
            raise ModelFormatError(
                f"state dict entry {key!r} is a {type(value).__name__}, not a tensor (a training checkpoint? "
                "pass the model's state dict, e.g. checkpoint['model_state_dict'], or the module itself)"
            )
        prefix, _, param = str(key).rpartition(".")
        if param not in ("weight", "bias"):
            raise UnsupportedOperatorError(
                f"state dict entry {key!r} is not a linear layer's weight or bias; lipmip reads state dicts of "
                "nn.Linear layers only (save the whole module, or an nn.Sequential of supported layers)"
            )
        layers.setdefault(prefix, {})[param] = as_float64(value, f"state dict entry {key!r}")
    if not layers:
        raise ModelFormatError("the state dict is empty")
    pairs = []
    for prefix, params in layers.items():
        label = prefix or "(top level)"
        if "weight" not in params:
            raise ModelFormatError(f"state dict layer {label!r} has a bias but no weight")
        if params["weight"].ndim != 2:
            raise UnsupportedOperatorError(
                f"state dict layer {label!r} has a weight of shape {params['weight'].shape}; only nn.Linear "
                "(2-D weight) is supported"
            )
        pairs.append((params["weight"], params.get("bias")))
    return Network.from_params(pairs, activations, input_shape=input_shape, name=name)


def load_torch_file(
    path: str | Path,
    *,
    activations: Sequence[str] | None = None,
    input_shape: Sequence[int] | None = None,
    name: str | None = None,
) -> Network:
    """Read a ``.pt``/``.pth`` file holding a pickled ``nn.Sequential`` (or
    ``nn.Linear``) or a state dict of linear layers.

    Tries ``torch.load(weights_only=True)`` first; only if PyTorch refuses
    that (a pickled module) is the file unpickled in full, which executes
    code from it: load only files you trust. ``activations`` applies to state
    dicts only. Raises :class:`ModelFormatError` naming the file when it is
    unreadable, corrupt, or holds something else.
    """
    path = Path(path)
    obj = _torch_load(path)
    try:
        if isinstance(obj, Mapping):
            return network_from_state_dict(
                obj, activations=activations, input_shape=input_shape, name=name or path.name
            )
        if activations is not None:
            raise ModelFormatError("activations= applies only to state dicts; a saved module defines its own")
        if not isinstance(obj, _torch().nn.Module):
            raise ModelFormatError(f"holds a {type(obj).__name__}, not an nn.Module or a state dict")
        return network_from_torch(obj, input_shape=input_shape, name=name or path.name)
    except LipmipError as exc:
        raise type(exc)(f"{path}: {exc}") from None


def _torch_load(path: Path) -> Any:
    """The object stored in ``path`` (on the CPU); :class:`ModelFormatError`
    naming the file if PyTorch cannot read it."""
    torch = _torch()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # advice about torch.load defaults, moot here
            return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError:
        pass  # not weights only (or not a pickle at all): try the full unpickler below
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError, EOFError, OSError, ...
        raise ModelFormatError(f"{path}: not a readable PyTorch file ({_first_line(exc)})") from None
    try:
        return torch.load(path, weights_only=False, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - unpickling can raise anything
        raise ModelFormatError(
            f"{path}: not a readable PyTorch file ({type(exc).__name__}: {_first_line(exc)})"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
