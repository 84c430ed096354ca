// Reading dtx's metrics back in tests: one scrape of dtx::metrics_text(),
// parsed into series -> value. The registry is process-wide, so a test
// compares two scrapes (before and after) rather than absolute values.
#pragma once

#include <cmath>
#include <map>
#include <sstream>
#include <string>

#include "dtx/metrics.h"

namespace dtx::test {

struct MetricsScrape {
  std::string text;
  std::map<std::string, double> samples;  // `name{labels}` exactly as printed -> value

  static MetricsScrape take() {
    MetricsScrape s;
    s.text = metrics_text();
    std::istringstream in(s.text);
    for (std::string line; std::getline(in, line);) {
      if (line.empty() || line[0] == '#') continue;
      const auto space = line.rfind(' ');
      if (space == std::string::npos) continue;
      s.samples[line.substr(0, space)] = std::stod(line.substr(space + 1));
    }
    return s;
  }

  // The series' value; 0 if it is not there (a labelled counter not yet used).
  double value(const std::string& series) const {
    auto it = samples.find(series);
    return it == samples.end() ? 0 : it->second;
  }
  bool has(const std::string& series) const { return samples.count(series) > 0; }
  // How far the series moved since the scrape `before`.
  double since(const MetricsScrape& before, const std::string& series) const {
    return value(series) - before.value(series);
  }

  // The cumulative count of histogram `name`'s bucket whose upper bound is `le`.
  double bucket(const std::string& name, double le) const {
    const std::string prefix = name + "_bucket{le=\"";
    for (auto it = samples.lower_bound(prefix); it != samples.end() && it->first.starts_with(prefix); ++it) {
      const std::string bound = it->first.substr(prefix.size(), it->first.size() - prefix.size() - 2);
      if (bound != "+Inf" && std::fabs(std::stod(bound) - le) <= le * 1e-9) return it->second;
    }
    return NAN;
  }
};

}  // namespace dtx::test
