// The process's metrics, in Prometheus form (docs/metrics.md lists them).
//
// dtx keeps one registry per process, filled by every Coordinator, recovery
// pass and operator command of the process: decisions logged and the
// decision log's flush latency, global transactions by outcome, recovery
// passes, prepared branches per resource, heuristic outcomes, connection
// errors. An application publishes it in one of two ways:
//
//   // with prometheus-cpp (<prometheus/exposer.h>, <prometheus/registry.h>;
//   // link prometheus-cpp::pull for the Exposer)
//   prometheus::Exposer exposer{"127.0.0.1:9464"};
//   exposer.RegisterCollectable(dtx::metrics_registry());
//
//   // with any HTTP server: the text exposition format, ready to serve
//   std::string body = dtx::metrics_text();  // Content-Type: text/plain; version=0.0.4
//
// This header needs no prometheus-cpp header; both functions are thread-safe.
#pragma once

#include <memory>
#include <string>

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace dtx {

// The registry every dtx metric lives in; the same one for the life of the
// process (it is never destroyed). Register it on your own Exposer, or add
// your own metric families to it (names starting with dtx_ are dtx's).
std::shared_ptr<prometheus::Registry> metrics_registry();

// Every metric of metrics_registry() in the Prometheus text exposition format
// (version 0.0.4), as a scrape of /metrics would return it.
std::string metrics_text();

}  // namespace dtx
