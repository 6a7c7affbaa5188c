"""`onnx_session`: an onnxruntime session on CUDA when it can really be had, else CPU."""

import ctypes
import logging
import os

logger = logging.getLogger("keras_longformer.export")

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
_PROVIDERS = ("auto", "cuda", "cpu")
# onnxruntime's severities: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal.
_WARNING = 2
_ERROR = 3


class ProviderUnavailableError(RuntimeError):
    """The execution provider asked for cannot be created on this machine."""


_ORT_INSTALL = (
    "install exactly one of `onnxruntime` (CPU; any platform) or `onnxruntime-gpu` "
    "(CUDA; Linux x86_64, Windows): both provide the one `onnxruntime` module"
)


def _ort():
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError(
            f"onnxruntime cannot be imported ({error}); {_ORT_INSTALL}."
        ) from None
    if not hasattr(onnxruntime, "InferenceSession"):
        # What is left when one of the two packages was removed after both
        # were installed over each other.
        raise ImportError(
            f"onnxruntime at {next(iter(getattr(onnxruntime, '__path__', [])), '?')} is incomplete "
            f"(onnxruntime and onnxruntime-gpu installed over each other?); uninstall "
            f"both, then {_ORT_INSTALL}."
        )
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

    Raises:
        FileNotFoundError: no file at `path`, or the external data file it
            keeps its weights in is missing (named).
        ProviderUnavailableError: `provider="cuda"` and CUDA cannot be had.

    CUDA sessions log onnxruntime's warnings (which nodes it placed on the
    CPU, for one); onnxruntime's global log level is never changed.
    """
    if provider not in _PROVIDERS:
        raise ValueError(
            f"`provider` must be one of {_PROVIDERS}. Received: provider={provider!r}"
        )
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No ONNX file at {path!r}")
    if provider == "cpu":
        return _create(path, session_options or _session_options(_ERROR), [CPU])

    reason = cuda_unavailable_reason()
    session = None
    if reason is None:
        try:
            # Warnings stay on: onnxruntime says there which nodes it left on
            # the CPU. The global onnxruntime log level is the user's: untouched.
            session = _create(
                path,
                session_options or _session_options(_WARNING),
                [(CUDA, {k: str(v) for k, v in (cuda_options or {}).items()}), CPU],
            )
        except FileNotFoundError:
            raise
        except Exception as error:  # onnxruntime raises plain RuntimeErrors
            reason = f"creating a CUDA session failed: {_first_line(error)}"
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
    return _create(path, session_options or _session_options(_ERROR), [CPU])


def _create(path, options, providers):
    """`onnxruntime.InferenceSession`, with a missing external data file named."""
    try:
        return _ort().InferenceSession(path, sess_options=options, providers=providers)
    except Exception:
        missing = _missing_external_data(path)
        if missing:
            raise FileNotFoundError(
                f"{path!r} keeps its weights in {missing[0]!r}, which is missing "
                "(copy the .onnx file together with its .data file)"
            ) from None
        raise


def _missing_external_data(path):
    """External data files `path` references that do not exist beside it."""
    from keras_longformer.export.files import external_locations

    directory = os.path.dirname(os.path.abspath(path))
    return sorted(
        os.path.join(directory, location)
        for location in external_locations(path)
        if not os.path.isfile(os.path.join(directory, location))
    )


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
