"""The backend <-> extension protocol (no torch, no bpy): ``from dposer_core import protocol as S``.

Every message, its fields and their bounds are defined once here, and the server, the client, the CLI
and the tests all import them from this package:

* ``errors``   -- stable error codes, :class:`ProtocolError` (and the task exceptions it carries);
* ``arrays``   -- the float32 :class:`Array` codec (JSON lists, base64, session files);
* ``fields``   -- field parsers and specs (package-internal);
* ``message``  -- the protocol version, JSON lines and the :class:`Message` base;
* ``requests`` / ``results`` -- one dataclass per request and per result / reply;
* ``registry`` -- ``REQUESTS[type]`` (``.request``, ``.result``), :func:`bounds`, make / parse / encode.
"""

from .arrays import (INLINE_MAX, MAX_ARRAY_ELEMENTS, MAX_POSITION_M, MAX_ROTATION_RAD, Array, allow_array_files,
                     decode_array, disallow_array_files, encode_array)
from .errors import (BAD_INPUT, BAD_REQUEST, CANCELLED, ERROR_CODES, FEATURE_UNAVAILABLE, INTERNAL,
                     MAX_MESSAGE_CHARS, OUT_OF_MEMORY, WEIGHTS_INVALID, WEIGHTS_MISSING, BadInput, ProtocolError,
                     TaskCancelled, clip)
from .message import MAX_LINE_BYTES, PROTOCOL_VERSION, Message, check_protocol, dumps, loads, protocol_major
from .registry import (REPLY_TYPES, REQUEST_TYPES, REQUESTS, RequestSpec, bounds, encode_result, make_request,
                       parse_reply, parse_request, parse_result)
from .requests import (MAX_COMPLETE_ROWS, MAX_DENOISE_FRAMES, MAX_INBETWEEN_FRAMES, CancelRequest, CompleteRequest,
                       DenoiseRequest, FitImageRequest, HelloRequest, InbetweenRequest, LoadRequest, PingRequest,
                       ReadAmassRequest, Request, RetargetBvhRequest, SampleRequest, ScoreRequest, ShutdownRequest,
                       VariationsRequest)
from .results import (CancelResult, CompleteResult, DenoiseResult, Error, FitImageResult, Hello, HelloResult,
                      InbetweenResult, LoadResult, MotionResult, PingResult, PosesResult, Progress, Result, ResultData,
                      ScoreResult, ShutdownResult)

__all__ = [
    # errors
    "BAD_REQUEST", "BAD_INPUT", "WEIGHTS_MISSING", "WEIGHTS_INVALID", "CANCELLED", "OUT_OF_MEMORY", "INTERNAL",
    "FEATURE_UNAVAILABLE", "ERROR_CODES", "MAX_MESSAGE_CHARS", "ProtocolError", "BadInput", "TaskCancelled", "clip",
    # arrays
    "INLINE_MAX", "MAX_ARRAY_ELEMENTS", "MAX_ROTATION_RAD", "MAX_POSITION_M", "Array", "encode_array",
    "decode_array", "allow_array_files", "disallow_array_files",
    # message
    "PROTOCOL_VERSION", "MAX_LINE_BYTES", "protocol_major", "check_protocol", "Message", "dumps", "loads",
    # requests
    "MAX_COMPLETE_ROWS", "MAX_INBETWEEN_FRAMES", "MAX_DENOISE_FRAMES", "Request", "HelloRequest", "LoadRequest",
    "SampleRequest", "VariationsRequest", "InbetweenRequest", "CompleteRequest", "DenoiseRequest", "ScoreRequest",
    "RetargetBvhRequest", "ReadAmassRequest", "FitImageRequest", "CancelRequest", "PingRequest", "ShutdownRequest",
    # replies and results
    "Hello", "Progress", "Result", "Error", "ResultData", "HelloResult", "LoadResult", "PosesResult",
    "InbetweenResult", "CompleteResult", "DenoiseResult", "ScoreResult", "MotionResult", "CancelResult",
    "PingResult", "ShutdownResult", "FitImageResult",
    # registry
    "RequestSpec", "REQUESTS", "REQUEST_TYPES", "REPLY_TYPES", "bounds", "make_request", "parse_request",
    "parse_reply", "parse_result", "encode_result",
]
