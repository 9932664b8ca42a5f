//! The OTLP/HTTP protobuf encoding of a [`Snapshot`]
//! (`application/x-protobuf`), written by hand: the handful of messages of
//! `opentelemetry/proto/collector/metrics/v1` that a snapshot uses, with
//! their field numbers from the published `.proto` files. A receiver built
//! from those files (the tests decode with the `opentelemetry-proto`
//! package) reads it.

use super::model::{Attribute, Data, HistogramPoint, Point, Snapshot, Times};

/// `ExportMetricsServiceRequest` bytes.
pub fn encode(s: &Snapshot) -> Vec<u8> {
    let mut w = Writer::default();
    // ExportMetricsServiceRequest.resource_metrics = 1
    w.message(1, |rm| {
        // ResourceMetrics.resource = 1 { Resource.attributes = 1 }
        rm.message(1, |r| attributes(r, 1, &s.resource));
        // ResourceMetrics.scope_metrics = 2
        rm.message(2, |sm| {
            // ScopeMetrics.scope = 1 { name = 1, version = 2 }
            sm.message(1, |scope| {
                scope.string(1, "mongars");
                scope.string(2, s.scope_version);
            });
            for m in &s.metrics {
                // ScopeMetrics.metrics = 2
                sm.message(2, |mw| {
                    mw.string(1, &m.name);
                    mw.string(2, &m.description);
                    mw.string(3, m.unit);
                    match &m.data {
                        // Metric.gauge = 5 { data_points = 1 }
                        Data::Gauge(points) => mw.message(5, |g| {
                            for p in points {
                                g.message(1, |pw| point(pw, p));
                            }
                        }),
                        // Metric.sum = 7 { data_points = 1, temporality = 2,
                        // is_monotonic = 3 }
                        Data::Sum(points) => mw.message(7, |sum| {
                            for p in points {
                                sum.message(1, |pw| point(pw, p));
                            }
                            sum.varint_field(2, CUMULATIVE);
                            sum.varint_field(3, 1);
                        }),
                        // Metric.histogram = 9 { data_points = 1, temporality = 2 }
                        Data::Histogram(points) => mw.message(9, |h| {
                            for p in points {
                                h.message(1, |pw| histogram(pw, p));
                            }
                            h.varint_field(2, CUMULATIVE);
                        }),
                    }
                });
            }
        });
    });
    w.buf
}

/// `AGGREGATION_TEMPORALITY_CUMULATIVE`.
const CUMULATIVE: u64 = 2;

/// Repeated `KeyValue` at `field`, each `{ key = 1, value = 2 {
/// string_value = 1 } }`.
fn attributes(w: &mut Writer, field: u32, list: &[Attribute]) {
    for (key, value) in list {
        w.message(field, |kv| {
            kv.string(1, key);
            kv.message(2, |any| any.string(1, value));
        });
    }
}

fn times(w: &mut Writer, t: &Times) {
    w.fixed64(2, t.start_unix_nano);
    w.fixed64(3, t.unix_nano);
}

/// `NumberDataPoint`: times 2 and 3, `as_int = 6` (sfixed64), attributes 7.
fn point(w: &mut Writer, p: &Point) {
    times(w, &p.times);
    w.fixed64(6, p.value as u64);
    attributes(w, 7, &p.attributes);
}

/// `HistogramDataPoint`: times 2 and 3, count 4, sum 5, bucket_counts 6
/// (packed fixed64), explicit_bounds 7 (packed double), attributes 9.
fn histogram(w: &mut Writer, h: &HistogramPoint) {
    times(w, &h.times);
    w.fixed64(4, h.count);
    w.fixed64_raw(5, h.sum.to_bits());
    w.packed_fixed64(6, h.bucket_counts.iter().copied());
    w.packed_fixed64(7, h.bounds.iter().map(|b| b.to_bits()));
    attributes(w, 9, &h.attributes);
}

const VARINT: u32 = 0;
const I64: u32 = 1;
const LEN: u32 = 2;

#[derive(Default)]
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u32) {
        self.varint(u64::from(field << 3 | wire));
    }

    fn varint_field(&mut self, field: u32, v: u64) {
        self.key(field, VARINT);
        self.varint(v);
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, LEN);
        self.varint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    fn string(&mut self, field: u32, s: &str) {
        self.bytes(field, s.as_bytes());
    }

    fn fixed64(&mut self, field: u32, v: u64) {
        self.fixed64_raw(field, v);
    }

    fn fixed64_raw(&mut self, field: u32, v: u64) {
        self.key(field, I64);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn packed_fixed64(&mut self, field: u32, values: impl ExactSizeIterator<Item = u64>) {
        self.key(field, LEN);
        self.varint(values.len() as u64 * 8);
        for v in values {
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// A sub-message at `field`, written by `body`.
    fn message(&mut self, field: u32, body: impl FnOnce(&mut Writer)) {
        let mut inner = Writer::default();
        body(&mut inner);
        self.bytes(field, &inner.buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_keys_are_written_as_protobuf_does() {
        let mut w = Writer::default();
        w.varint(300);
        assert_eq!(w.buf, [0xac, 0x02]);
        let mut w = Writer::default();
        w.string(1, "hi");
        assert_eq!(w.buf, [0x0a, 2, b'h', b'i']);
        let mut w = Writer::default();
        w.fixed64(2, 1);
        assert_eq!(w.buf, [0x11, 1, 0, 0, 0, 0, 0, 0, 0]);
        let mut w = Writer::default();
        w.message(3, |m| m.varint_field(1, 150));
        assert_eq!(w.buf, [0x1a, 3, 0x08, 0x96, 0x01]);
        let mut w = Writer::default();
        w.packed_fixed64(6, [1u64, 2].into_iter());
        assert_eq!(w.buf[..2], [0x32, 16]);
    }
}
