"""REST JSON transport (standard library http.client, one kept-alive connection per client)."""
import http.client
import json
import threading
import urllib.parse

from . import _tensors as T
from ._errors import AutogradError

_TENSOR_MAPS = ("inputs", "seeds", "tangents", "vector")


class RestTransport:
    name = "rest"

    def __init__(self, url, timeout, headers=None):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https"):
            raise ValueError(f"a REST address starts with http:// or https://, got {url!r}")
        self._scheme = parsed.scheme
        self._host = parsed.hostname or "127.0.0.1"
        self._port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self._prefix = parsed.path.rstrip("/")
        self._timeout = timeout
        self._headers = dict(headers or {})
        self._lock = threading.Lock()
        self._connection = None
        self.round_trips = 0
        self.commands_sent = 0

    # Plumbing.

    def _connect(self):
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=self._timeout)

    def _request(self, method, path, body=None, accept="application/json", stream=False):
        try:
            return self._exchange(method, path, body, accept, stream)
        except (OSError, http.client.HTTPException) as e:
            # The network's failures are the same one exception as the service's (gRPC says UNAVAILABLE for these).
            raise AutogradError("unavailable", f"{method} {self._host}:{self._port}{self._prefix}{path}: {e}") from e

    def _exchange(self, method, path, body, accept, stream):
        headers = dict(self._headers)
        headers["accept"] = accept
        data = None
        if body is not None:
            data = json.dumps(body, allow_nan=False).encode("utf-8")
            headers["content-type"] = "application/json"
        self.round_trips += 1
        if stream:
            # A streamed response holds its connection until read to the end: give it its own.
            connection = self._connect()
            connection.request(method, self._prefix + path, body=data, headers=headers)
            response = connection.getresponse()
            if response.status >= 400:
                text = response.read()
                connection.close()
                raise _error(response.status, text)
            return connection, response
        with self._lock:
            for attempt in (0, 1):
                if self._connection is None:
                    self._connection = self._connect()
                try:
                    self._connection.request(method, self._prefix + path, body=data, headers=headers)
                    response = self._connection.getresponse()
                    text = response.read()
                    break
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                    # The server closed an idle kept-alive connection: one fresh try.
                    self._connection.close()
                    self._connection = None
                    if attempt:
                        raise
        if response.status >= 400:
            raise _error(response.status, text)
        return json.loads(text) if text else None

    def close(self):
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    # Stateless transforms.

    def transform(self, kind, request):
        body = _body(request)
        body["tensor_encoding"] = "b64"  # exact and compact on the way back
        reply = self._request("POST", f"/v1/{kind}", body)
        return _decode(reply)

    def gradient_stream(self, request):
        body = _body(request)
        connection, response = self._request("POST", "/v1/gradient", body, accept="application/x-ndjson", stream=True)
        try:
            for line in response:
                line = line.strip()
                if not line:
                    continue
                item = json.loads(line)
                if "stats" in item and "name" not in item:
                    yield ("stats", item["stats"])
                else:
                    yield ("chunk", {"name": item["name"], "role": item["role"], "dtype": item.get("dtype"),
                                     "shape": item.get("shape"), "offset": item.get("offset", 0),
                                     "array": T.from_json({"dtype": item.get("dtype", "float32"), "shape": [-1],
                                                           **({"b64": item["b64"]} if "b64" in item else {"data": item.get("data", [])})}),
                                     "last": item.get("last", True)})
        finally:
            connection.close()

    def inspect(self, request):
        body = {**_source(request["source"]), "inputs": {k: T.to_json(v) for k, v in request.get("inputs", {}).items()}}
        reply = self._request("POST", "/v1/inspect", body)
        return {"valid": reply.get("valid", True),
                "values": {k: (v.get("dtype"), v.get("shape")) for k, v in reply.get("values", {}).items()},
                "flops": reply.get("flops"), "peak_bytes": reply.get("peak_bytes"),
                "dot": reply.get("dot"), "mermaid": reply.get("mermaid"),
                "peak_bytes_exact": reply.get("peak_bytes_exact", True), "peak_bytes_caveat": reply.get("peak_bytes_caveat")}

    def ops(self):
        reply = self._request("GET", "/v1/ops")
        return reply.get("ops", reply) if isinstance(reply, dict) else reply

    def devices(self):
        return self._request("GET", "/v1/devices")

    def put_model(self, name, source):
        return self._request("PUT", f"/v1/models/{urllib.parse.quote(name, safe='')}", _source(source))

    def get_model(self, name):
        return self._request("GET", f"/v1/models/{urllib.parse.quote(name, safe='')}")

    def list_models(self):
        return self._request("GET", "/v1/models").get("models", [])

    def delete_model(self, name):
        self._request("DELETE", f"/v1/models/{urllib.parse.quote(name, safe='')}")

    # Sessions: an id and one POST per batch.

    def open_session(self, options):
        reply = self._request("POST", "/v1/sessions", {k: v for k, v in options.items() if v is not None})
        return reply["id"]

    def run_session(self, handle, commands):
        self.commands_sent += len(commands)
        body = {"commands": [_command_json(c) for c in commands]}
        try:
            reply = self._request("POST", f"/v1/sessions/{handle}/commands", body)
        except AutogradError as e:
            return [], e
        return [T.from_json(r["value"]) if "value" in r else None for r in reply["results"]], None

    def close_session(self, handle):
        try:
            self._request("DELETE", f"/v1/sessions/{handle}")
        except AutogradError as e:
            if e.code != "not_found":
                raise


def _error(status, text):
    try:
        problem = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    return AutogradError(problem.get("code", f"http_{status}"), problem.get("detail") or problem.get("title") or text[:200].decode("utf-8", "replace"),
                         node=problem.get("node"), op=problem.get("op"), input=problem.get("input"), status=status,
                         command_index=problem.get("command_index"), trace_id=problem.get("trace_id"))


def _source(source):
    kind, value = source
    if kind == "graph" and hasattr(value, "SerializeToString"):
        raise TypeError("a protobuf Graph travels over gRPC; over REST give the graph as a dict (the JSON form)")
    return {kind: value}


def _body(request):
    body = _source(request["source"])
    for key, value in request.items():
        if key == "source" or value is None:
            continue
        if key in _TENSOR_MAPS:
            body[key] = {k: T.to_json(v) for k, v in value.items()}
        else:
            body[key] = value
    return body


def _decode(reply):
    out = {}
    for key, value in reply.items():
        if key in ("outputs", "gradients", "tangents_out", "hvp"):
            out[key] = {k: T.from_json(v) for k, v in value.items()}
        elif key in ("jacobians", "hessians"):
            out[key] = {o: {i: T.from_json(t) for i, t in row.items()} for o, row in value.items()}
        elif key == "intermediates":
            out[key] = {k: (T.from_json(v["value"]), T.from_json(v["adjoint"]) if v.get("adjoint") else None) for k, v in value.items()}
        else:
            out[key] = value
    return out


def _command_json(command):
    (kind, args), = command.items()
    args = dict(args)
    for key in ("value", "seed"):
        if args.get(key) is not None:
            args[key] = T.to_json(args[key])
    return {kind: {k: v for k, v in args.items() if v is not None}}
