"""`onnx_session`: an onnxruntime session on CUDA when it can really be had, else CPU."""

import ctypes
import logging
import os

logger = logging.getLogger("keras_longformer.export")

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
_PROVIDERS = ("auto", "cuda", "cpu")


class ProviderUnavailableError(RuntimeError):
    """The execution provider asked for cannot be created on this machine."""


def _ort():
    import onnxruntime

    return onnxruntime


def cuda_unavailable_reason():
    """Why onnxruntime's CUDA provider cannot be used here, or None if it may be.

    Checks, without asking onnxruntime to create anything (which logs a
    multi-line error when it fails): that this onnxruntime build has the
    CUDA provider, and that its library and the CUDA/cuDNN libraries it
    links against can be loaded. A None answer still has to be confirmed
    by creating a session (a driver or a GPU may be missing).
    """
    ort = _ort()
    if CUDA not in ort.get_available_providers():
        return (
            f"this onnxruntime build ({ort.__version__}) has no CUDA provider "
            "(install onnxruntime-gpu)"
        )
    library = os.path.join(
        os.path.dirname(ort.__file__), "capi", "libonnxruntime_providers_cuda.so"
    )
    if os.path.exists(library):  # Linux wheels; elsewhere let the session decide.
        try:
            try:
                ctypes.CDLL(library)
            except OSError:
                # CUDA and cuDNN may come as nvidia-* pip wheels, which
                # onnxruntime loads only when asked to.
                _preload_cuda_wheels(ort)
                ctypes.CDLL(library)
        except OSError as error:
            message = str(error).split(":")
            missing = message[0].strip() if len(message) > 1 else str(error)
            return (
                f"onnxruntime's CUDA provider cannot load {missing} "
                "(onnxruntime-gpu needs the CUDA and cuDNN versions it was built for)"
            )
    return None


def _preload_cuda_wheels(ort):
    if not hasattr(ort, "preload_dlls"):
        return
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(Exception):
        ort.preload_dlls(directory="")


def _session_options(log_severity):
    ort = _ort()
    options = ort.SessionOptions()
    options.log_severity_level = log_severity
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def onnx_session(path, provider="auto", *, session_options=None, cuda_options=None):
    """An `onnxruntime.InferenceSession` for `path` on CUDA or CPU.

    Args:
        path: path of an `.onnx` file (external data, if any, beside it).
        provider: `"auto"`: CUDAExecutionProvider when a session on it can
            really be created, else CPUExecutionProvider, logging one line
            (logger `keras_longformer.export`) that says why. `"cuda"`: CUDA
            or a `ProviderUnavailableError` saying why. `"cpu"`: CPU only.
        session_options: optional `onnxruntime.SessionOptions`.
        cuda_options: optional dict of CUDA provider options, e.g.
            `{"device_id": 1, "use_tf32": 0}` (TF32 matmuls on Ampere and
            later GPUs trade about 1e-3 of accuracy for speed).

    Returns:
        An `onnxruntime.InferenceSession`. The provider actually obtained is
        checked with `session.get_providers()`, never assumed.
    """
    if provider not in _PROVIDERS:
        raise ValueError(
            f"`provider` must be one of {_PROVIDERS}. Received: provider={provider!r}"
        )
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No ONNX file at {path!r}")
    ort = _ort()
    if provider == "cpu":
        return ort.InferenceSession(
            path, sess_options=session_options or _session_options(3), providers=[CPU]
        )

    reason = cuda_unavailable_reason()
    session = None
    if reason is None:
        try:
            # Keep onnxruntime's own multi-line provider errors out of the
            # output: the outcome is checked below and reported in one line.
            ort.set_default_logger_severity(4)
            session = ort.InferenceSession(
                path,
                sess_options=session_options or _session_options(4),
                providers=[(CUDA, {k: str(v) for k, v in (cuda_options or {}).items()}), CPU],
            )
        except Exception as error:  # onnxruntime raises plain RuntimeErrors
            reason = f"creating a CUDA session failed: {_first_line(error)}"
        finally:
            ort.set_default_logger_severity(2)  # onnxruntime's default (warning)
        if session is not None and session.get_providers()[0] != CUDA:
            reason = (
                "onnxruntime did not create the CUDA provider (no usable GPU or "
                f"driver); session providers: {session.get_providers()}"
            )
            session = None
    if session is not None:
        return session
    if provider == "cuda":
        raise ProviderUnavailableError(f"CUDA is not available: {reason}")
    logger.warning("onnxruntime runs on CPU: %s", reason)
    return ort.InferenceSession(
        path, sess_options=session_options or _session_options(3), providers=[CPU]
    )


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
