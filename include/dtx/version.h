#pragma once

namespace dtx {
inline constexpr const char* kVersion = "0.1.0";
}  // namespace dtx
