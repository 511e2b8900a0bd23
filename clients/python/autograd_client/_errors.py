"""The one exception every failed call raises, whichever transport carried it."""


class AutogradError(Exception):
    """A refusal or failure reported by the service (or the transport).

    ``code`` is the service's stable error code (``invalid_graph``, ``shape_mismatch``, ``graph_freed``, ...);
    ``node``, ``op`` and ``input`` name where it happened when the service knows; ``command_index`` is the failed
    command of a session batch; ``status`` is the HTTP status or the gRPC status code's name.
    """

    def __init__(self, code, message, node=None, op=None, input=None, status=None, command_index=None, trace_id=None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.node = node
        self.op = op
        self.input = input
        self.status = status
        self.command_index = command_index
        self.trace_id = trace_id

    def __repr__(self):
        where = ", ".join(f"{k}={v!r}" for k, v in (("node", self.node), ("op", self.op), ("input", self.input),
                                                   ("command_index", self.command_index)) if v is not None)
        return f"AutogradError({self.code!r}, {self.message!r}{', ' + where if where else ''})"
