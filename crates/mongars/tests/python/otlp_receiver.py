"""An OpenTelemetry collector's OTLP/HTTP metrics endpoint, for the tests.

Usage: python3 otlp_receiver.py
Listens on 127.0.0.1 (a free port), prints `port N`, then one JSON line per
`POST /v1/metrics`: the content type, the resource's attributes, and every
metric with its kind, unit and points. The body is decoded with the
`opentelemetry-proto` package (the published .proto files), not by anything
of the server under test. Answers an empty ExportMetricsServiceResponse.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2


def attributes(kvs):
    return {kv.key: kv.value.string_value for kv in kvs}


def summary(request):
    out = {"resource": {}, "scope": None, "metrics": {}}
    for rm in request.resource_metrics:
        out["resource"] = attributes(rm.resource.attributes)
        for sm in rm.scope_metrics:
            out["scope"] = {"name": sm.scope.name, "version": sm.scope.version}
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                entry = {"kind": kind, "unit": m.unit, "points": []}
                if kind in ("sum", "gauge"):
                    data = getattr(m, kind)
                    if kind == "sum":
                        entry["monotonic"] = data.is_monotonic
                        entry["temporality"] = data.aggregation_temporality
                    for p in data.data_points:
                        value = p.as_int if p.WhichOneof("value") == "as_int" else p.as_double
                        entry["points"].append(
                            {"attributes": attributes(p.attributes), "value": value,
                             "start": p.start_time_unix_nano, "time": p.time_unix_nano})
                elif kind == "histogram":
                    entry["temporality"] = m.histogram.aggregation_temporality
                    for p in m.histogram.data_points:
                        entry["points"].append(
                            {"attributes": attributes(p.attributes), "count": p.count,
                             "sum": p.sum, "buckets": list(p.bucket_counts),
                             "bounds": list(p.explicit_bounds)})
                out["metrics"][m.name] = entry
    return out


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        kind = self.headers.get("Content-Type", "")
        request = metrics_service_pb2.ExportMetricsServiceRequest()
        if self.path != "/v1/metrics":
            self.send_response(404)
            self.end_headers()
            return
        if kind == "application/x-protobuf":
            request.ParseFromString(body)
        else:
            json_format.Parse(body.decode(), request)
        line = summary(request)
        line["content_type"] = kind
        print(json.dumps(line), flush=True)
        reply = metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"port {server.server_address[1]}", flush=True)
server.serve_forever()
